//! A pod's volumes on this node: set up before any container starts (as the kubelet
//! waits for mounts), refreshed while the pod runs (config maps and secrets change),
//! and turned into each container's mount requests (`volumeMounts`, `subPath`).
//! Volume directories live under the pod's directory: `<pod dir>/volumes/<name>`.

use crate::mount_plan::MountReq;
use crate::volume_source::{self, File, Objects, Source};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::api::Api;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a pod's volumes are not ready.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeError {
    /// The pod asks for something weft's local runtime does not do (it will not change
    /// by waiting), as opposed to a missing object or a failed write.
    pub unsupported: bool,
    pub message: String,
}

impl From<String> for VolumeError {
    fn from(message: String) -> Self {
        VolumeError { unsupported: false, message }
    }
}

#[derive(Default)]
pub struct PodVolumes {
    /// Volume name → the host directory (or hostPath) that holds it.
    pub dirs: BTreeMap<String, PathBuf>,
    /// What was last written to each file-backed volume.
    written: BTreeMap<String, Vec<File>>,
}

impl PodVolumes {
    /// configMap, secret, downwardAPI and projected volumes are always mounted
    /// read-only, as upstream does since 1.10.
    fn api_data(&self, name: &str) -> bool {
        self.written.contains_key(name)
    }
}

impl PodVolumes {
    /// Makes every volume of the pod ready, or says which one cannot be and why.
    pub async fn sync(&mut self, client: &kube::Client, pod: &Pod, pod_dir: &Path) -> Result<(), VolumeError> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let volumes = pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default();
        let mut sources = Vec::new();
        for v in &volumes {
            sources.push((v.name.clone(), volume_source::classify(v).map_err(|message| VolumeError { unsupported: true, message })?));
        }
        let mut objects = Objects::default();
        for (_, src) in &sources {
            let (cms, secrets) = volume_source::referenced(src);
            for name in cms {
                if objects.config_maps.contains_key(&name) {
                    continue;
                }
                match Api::<ConfigMap>::namespaced(client.clone(), &ns).get_opt(&name).await {
                    Ok(Some(cm)) => {
                        let mut data: BTreeMap<String, Vec<u8>> = cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
                        data.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
                        objects.config_maps.insert(name, data);
                    }
                    Ok(None) => {}
                    Err(e) => return Err(format!("getting configmap {name:?}: {e}").into()),
                }
            }
            for name in secrets {
                if objects.secrets.contains_key(&name) {
                    continue;
                }
                match Api::<Secret>::namespaced(client.clone(), &ns).get_opt(&name).await {
                    Ok(Some(s)) => {
                        let mut data: BTreeMap<String, Vec<u8>> = s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
                        data.extend(s.string_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())));
                        objects.secrets.insert(name, data);
                    }
                    Ok(None) => {}
                    Err(e) => return Err(format!("getting secret {name:?}: {e}").into()),
                }
            }
        }
        for (name, src) in &sources {
            let dir = pod_dir.join("volumes").join(name);
            match src {
                Source::EmptyDir => {
                    std::fs::create_dir_all(&dir).map_err(|e| format!("volume {name:?}: creating {}: {e}", dir.display()))?;
                    self.dirs.insert(name.clone(), dir);
                }
                Source::HostPath { path, type_ } => {
                    let p = crate::volume_files::host_path(path, type_, name)?;
                    self.dirs.insert(name.clone(), p);
                }
                Source::Files { .. } => {
                    let files = volume_source::files(src, &objects, pod).map_err(|e| format!("MountVolume.SetUp failed for volume {name:?}: {e}"))?;
                    if self.written.get(name) != Some(&files) {
                        crate::volume_files::write_atomic(&dir, &files).map_err(|e| format!("volume {name:?}: writing {}: {e}", dir.display()))?;
                        self.written.insert(name.clone(), files);
                    }
                    self.dirs.insert(name.clone(), dir);
                }
            }
        }
        Ok(())
    }

    /// Whether any volume is made from API objects (and so worth refreshing).
    pub fn has_projections(pod: &Pod) -> bool {
        pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()).any(|v| v.config_map.is_some() || v.secret.is_some() || v.projected.is_some() || v.downward_api.is_some())
    }

    /// A container's mount requests. `list` is "containers" or "initContainers"; `env`
    /// expands `subPathExpr`.
    pub fn mounts_for(&self, c: &Container, list: &str, env: &[(String, String)]) -> Result<Vec<MountReq>, String> {
        if c.volume_devices.as_ref().is_some_and(|d| !d.is_empty()) {
            return Err(format!("{list}[{}].volumeDevices: block devices are not supported by weft's local runtime", c.name));
        }
        let mut out = Vec::new();
        for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
            let what = format!("{list}[{}].volumeMounts[{i}] (volume {:?})", c.name, m.name);
            if let Some(p) = m.mount_propagation.as_deref().filter(|p| *p != "None") {
                return Err(format!("{what}: mountPropagation {p:?} is not supported by weft's local runtime; leave it unset (None)"));
            }
            if m.recursive_read_only.as_deref() == Some("Enabled") {
                return Err(format!("{what}: recursiveReadOnly \"Enabled\" is not supported by weft's local runtime; use IfPossible or Disabled"));
            }
            let Some(dir) = self.dirs.get(&m.name) else { return Err(format!("{what}: the pod has no such volume")) };
            let sub = match (&m.sub_path, &m.sub_path_expr) {
                (Some(s), _) if !s.is_empty() => s.clone(),
                (_, Some(e)) if !e.is_empty() => crate::env::expand(e, env),
                _ => String::new(),
            };
            if Path::new(&sub).is_absolute() || Path::new(&sub).components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return Err(format!("{what}: subPath {sub:?} must be a relative path without '..'"));
            }
            let src = if sub.is_empty() { dir.clone() } else { dir.join(&sub) };
            if !sub.is_empty() && std::fs::symlink_metadata(&src).is_err() {
                // As the kubelet: a missing subPath is made as a directory in the volume.
                std::fs::create_dir_all(&src).map_err(|e| format!("{what}: creating subPath {}: {e}", src.display()))?;
            }
            let is_dir = std::fs::metadata(&src).map(|m| m.is_dir()).unwrap_or(true);
            out.push(MountReq { src, target: PathBuf::from(&m.mount_path), read_only: m.read_only.unwrap_or(false) || self.api_data(&m.name), dir: is_dir, what });
        }
        Ok(out)
    }
}
