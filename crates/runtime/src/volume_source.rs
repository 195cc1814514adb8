//! A pod's volumes, the pure half: which sources weft's local runtime supports, and the
//! files that configMap, secret, downwardAPI and projected volumes hold (with `items`,
//! `defaultMode`/`mode`, `optional`), computed from the objects they name.
//! `volume_files` writes them; `mount_plan` decides where containers see them.

use k8s_openapi::api::core::v1::{KeyToPath, Pod, Volume};
use std::collections::BTreeMap;
use std::path::PathBuf;

const SUPPORTED: &str = "weft's local runtime supports emptyDir, hostPath, configMap, secret, downwardAPI and projected (configMap, secret, downwardAPI) volumes";

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    EmptyDir,
    HostPath { path: PathBuf, type_: String },
    /// Files made from API objects (configMap, secret, downwardAPI, projected).
    Files { projections: Vec<Projection>, default_mode: u32 },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Projection {
    ConfigMap { name: String, items: Option<Vec<KeyToPath>>, optional: bool, mode: Option<u32> },
    Secret { name: String, items: Option<Vec<KeyToPath>>, optional: bool, mode: Option<u32> },
    DownwardApi { items: Vec<k8s_openapi::api::core::v1::DownwardAPIVolumeFile>, mode: Option<u32> },
}

/// One file of a volume: a path relative to the volume's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// The config maps and secrets of the pod's namespace that exist (by name).
#[derive(Default)]
pub struct Objects {
    pub config_maps: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

fn mode(m: Option<i32>) -> Option<u32> {
    m.map(|m| (m & 0o777) as u32)
}

/// What a volume is, or why weft cannot provide it (naming the volume and its type).
pub fn classify(v: &Volume) -> Result<Source, String> {
    let unsupported = |ty: &str| Err(format!("volume {:?}: {ty} volumes are not supported; {SUPPORTED}", v.name));
    if v.empty_dir.is_some() {
        return Ok(Source::EmptyDir);
    }
    if let Some(h) = &v.host_path {
        return Ok(Source::HostPath { path: PathBuf::from(&h.path), type_: h.type_.clone().unwrap_or_default() });
    }
    if let Some(c) = &v.config_map {
        return Ok(Source::Files {
            projections: vec![Projection::ConfigMap { name: c.name.clone(), items: c.items.clone(), optional: c.optional.unwrap_or(false), mode: None }],
            default_mode: mode(c.default_mode).unwrap_or(0o644),
        });
    }
    if let Some(s) = &v.secret {
        return Ok(Source::Files {
            projections: vec![Projection::Secret { name: s.secret_name.clone().unwrap_or_default(), items: s.items.clone(), optional: s.optional.unwrap_or(false), mode: None }],
            default_mode: mode(s.default_mode).unwrap_or(0o644),
        });
    }
    if let Some(d) = &v.downward_api {
        return Ok(Source::Files { projections: vec![Projection::DownwardApi { items: d.items.clone().unwrap_or_default(), mode: None }], default_mode: mode(d.default_mode).unwrap_or(0o644) });
    }
    if let Some(p) = &v.projected {
        let mut projections = Vec::new();
        for (i, s) in p.sources.iter().flatten().enumerate() {
            if let Some(c) = &s.config_map {
                projections.push(Projection::ConfigMap { name: c.name.clone(), items: c.items.clone(), optional: c.optional.unwrap_or(false), mode: None });
            } else if let Some(sec) = &s.secret {
                projections.push(Projection::Secret { name: sec.name.clone(), items: sec.items.clone(), optional: sec.optional.unwrap_or(false), mode: None });
            } else if let Some(d) = &s.downward_api {
                projections.push(Projection::DownwardApi { items: d.items.clone().unwrap_or_default(), mode: None });
            } else {
                let what = if s.service_account_token.is_some() {
                    "serviceAccountToken"
                } else if s.cluster_trust_bundle.is_some() {
                    "clusterTrustBundle"
                } else {
                    "this"
                };
                return Err(format!("volume {:?}: projected.sources[{i}]: {what} projections are not supported; {SUPPORTED}", v.name));
            }
        }
        return Ok(Source::Files { projections, default_mode: mode(p.default_mode).unwrap_or(0o644) });
    }
    let ty = [
        (v.persistent_volume_claim.is_some(), "persistentVolumeClaim"),
        (v.ephemeral.is_some(), "ephemeral"),
        (v.csi.is_some(), "csi"),
        (v.nfs.is_some(), "nfs"),
        (v.image.is_some(), "image"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.iscsi.is_some(), "iscsi"),
        (v.rbd.is_some(), "rbd"),
        (v.cephfs.is_some(), "cephfs"),
        (v.fc.is_some(), "fc"),
        (v.flex_volume.is_some(), "flexVolume"),
    ]
    .into_iter()
    .find(|(on, _)| *on)
    .map(|(_, t)| t)
    .unwrap_or("this type of");
    unsupported(ty)
}

/// The names of the config maps and secrets a volume source reads.
pub fn referenced(src: &Source) -> (Vec<String>, Vec<String>) {
    let (mut cms, mut secrets) = (Vec::new(), Vec::new());
    if let Source::Files { projections, .. } = src {
        for p in projections {
            match p {
                Projection::ConfigMap { name, .. } => cms.push(name.clone()),
                Projection::Secret { name, .. } => secrets.push(name.clone()),
                Projection::DownwardApi { .. } => {}
            }
        }
    }
    (cms, secrets)
}

/// The files of a volume. Errors read like the kubelet's mount errors.
pub fn files(src: &Source, objects: &Objects, pod: &Pod) -> Result<Vec<File>, String> {
    let Source::Files { projections, default_mode } = src else { return Ok(Vec::new()) };
    let mut out: BTreeMap<String, File> = BTreeMap::new();
    for p in projections {
        match p {
            Projection::ConfigMap { name, items, optional, mode } | Projection::Secret { name, items, optional, mode } => {
                let (kind, noun, map) = match p {
                    Projection::ConfigMap { .. } => ("configmap", "config", objects.config_maps.get(name)),
                    _ => ("secret", "secret", objects.secrets.get(name)),
                };
                let Some(data) = map else {
                    if *optional {
                        continue;
                    }
                    return Err(format!("{kind} {name:?} not found"));
                };
                let m = mode.unwrap_or(*default_mode);
                match items {
                    None => {
                        for (k, v) in data {
                            out.insert(k.clone(), File { path: k.clone(), data: v.clone(), mode: m });
                        }
                    }
                    Some(items) => {
                        for it in items {
                            match data.get(&it.key) {
                                Some(v) => {
                                    out.insert(it.path.clone(), File { path: it.path.clone(), data: v.clone(), mode: self::mode(it.mode).unwrap_or(m) });
                                }
                                None if *optional => {}
                                None => return Err(format!("{kind} {name:?} references non-existent {noun} key: {}", it.key)),
                            }
                        }
                    }
                }
            }
            Projection::DownwardApi { items, mode } => {
                for it in items {
                    let value = downward(pod, it)?;
                    let m = self::mode(it.mode).or(*mode).unwrap_or(*default_mode);
                    out.insert(it.path.clone(), File { path: it.path.clone(), data: value.into_bytes(), mode: m });
                }
            }
        }
    }
    Ok(out.into_values().collect())
}

fn downward(pod: &Pod, it: &k8s_openapi::api::core::v1::DownwardAPIVolumeFile) -> Result<String, String> {
    if let Some(f) = &it.field_ref {
        let m = &pod.metadata;
        return match f.field_path.as_str() {
            "metadata.labels" => Ok(format_map(m.labels.as_ref())),
            "metadata.annotations" => Ok(format_map(m.annotations.as_ref())),
            p => crate::env::field(pod, p).ok_or_else(|| format!("downwardAPI item {:?}: unsupported fieldRef {p:?}", it.path)),
        };
    }
    if let Some(r) = &it.resource_field_ref {
        let name = r.container_name.clone().unwrap_or_default();
        let c = pod.spec.iter().flat_map(|s| s.containers.iter()).find(|c| c.name == name).ok_or_else(|| format!("downwardAPI item {:?}: no container {name:?}", it.path))?;
        return crate::env::resource(c, &r.resource).ok_or_else(|| format!("downwardAPI item {:?}: unsupported resource {:?}", it.path, r.resource));
    }
    Err(format!("downwardAPI item {:?}: needs fieldRef or resourceFieldRef", it.path))
}

/// Labels and annotations as the kubelet writes them: `key="value"` lines, sorted,
/// values quoted as Go's strconv.Quote does.
fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.into_iter().flatten().map(|(k, v)| format!("{k}={}", go_quote(v))).collect::<Vec<_>>().join("\n")
}

fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn volume(v: serde_json::Value) -> Volume {
        serde_json::from_value(v).unwrap()
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "labels": {"app": "web", "tier": "front \"end\""}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}]},
        }))
        .unwrap()
    }

    fn objects() -> Objects {
        let mut o = Objects::default();
        o.config_maps.insert("app".into(), BTreeMap::from([("a.conf".into(), b"A".to_vec()), ("b.conf".into(), b"B".to_vec())]));
        o.secrets.insert("db".into(), BTreeMap::from([("password".into(), b"s3cret".to_vec())]));
        o
    }

    #[test]
    fn a_config_map_projects_every_key_with_the_default_mode() {
        let src = classify(&volume(json!({"name": "cfg", "configMap": {"name": "app", "defaultMode": 0o600}}))).unwrap();
        let f = files(&src, &objects(), &pod()).unwrap();
        assert_eq!(f, vec![File { path: "a.conf".into(), data: b"A".to_vec(), mode: 0o600 }, File { path: "b.conf".into(), data: b"B".to_vec(), mode: 0o600 }]);
    }

    #[test]
    fn items_pick_keys_paths_and_modes() {
        let src = classify(&volume(json!({"name": "s", "secret": {"secretName": "db", "items": [{"key": "password", "path": "creds/pw", "mode": 0o400}]}}))).unwrap();
        assert_eq!(files(&src, &objects(), &pod()).unwrap(), vec![File { path: "creds/pw".into(), data: b"s3cret".to_vec(), mode: 0o400 }]);
        let src = classify(&volume(json!({"name": "s", "secret": {"secretName": "db", "items": [{"key": "user", "path": "u"}]}}))).unwrap();
        assert_eq!(files(&src, &objects(), &pod()).unwrap_err(), "secret \"db\" references non-existent secret key: user");
    }

    #[test]
    fn a_missing_object_is_an_error_unless_optional() {
        let src = classify(&volume(json!({"name": "cfg", "configMap": {"name": "nope"}}))).unwrap();
        assert_eq!(files(&src, &objects(), &pod()).unwrap_err(), "configmap \"nope\" not found");
        let src = classify(&volume(json!({"name": "cfg", "configMap": {"name": "nope", "optional": true}}))).unwrap();
        assert!(files(&src, &objects(), &pod()).unwrap().is_empty());
    }

    #[test]
    fn downward_api_writes_fields_and_label_maps() {
        let src = classify(&volume(json!({"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory"}},
        ]}}))).unwrap();
        let f = files(&src, &objects(), &pod()).unwrap();
        let get = |p: &str| String::from_utf8(f.iter().find(|x| x.path == p).unwrap().data.clone()).unwrap();
        assert_eq!(get("labels"), "app=\"web\"\ntier=\"front \\\"end\\\"\"");
        assert_eq!(get("name"), "web");
        assert_eq!(get("mem"), "64Mi");
    }

    #[test]
    fn projected_volumes_combine_sources_but_not_tokens() {
        let src = classify(&volume(json!({"name": "all", "projected": {"sources": [
            {"configMap": {"name": "app", "items": [{"key": "a.conf", "path": "a"}]}},
            {"secret": {"name": "db"}},
        ]}}))).unwrap();
        let paths: Vec<String> = files(&src, &objects(), &pod()).unwrap().into_iter().map(|f| f.path).collect();
        assert_eq!(paths, ["a", "password"]);
        let e = classify(&volume(json!({"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}))).unwrap_err();
        assert!(e.contains("volume \"tok\"") && e.contains("serviceAccountToken"), "{e}");
    }

    #[test]
    fn unsupported_sources_name_the_volume_and_type() {
        let e = classify(&volume(json!({"name": "data", "persistentVolumeClaim": {"claimName": "c"}}))).unwrap_err();
        assert!(e.starts_with("volume \"data\": persistentVolumeClaim volumes are not supported"), "{e}");
        assert_eq!(referenced(&classify(&volume(json!({"name": "x", "secret": {"secretName": "db"}}))).unwrap()), (vec![], vec!["db".to_string()]));
    }
}
