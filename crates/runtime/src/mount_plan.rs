//! Where a container's volumes appear, decided before anything is mounted (pure: the
//! host's filesystem is read through [`FsView`]).
//!
//! Containers are host processes that share the host's filesystem, so a volume is
//! bind-mounted at its `mountPath` inside the container's own private mount namespace,
//! and the host's directories are never created, changed or masked for anyone else:
//!
//! - `mountPath` exists on the host (a directory for a directory volume, a file for a
//!   file): the volume is bound over it, for this container only.
//! - `mountPath` does not exist: its nearest existing ancestor `A` gets a *shadow* in the
//!   container's namespace: a tmpfs over `A` in which every entry of `A` is bound back
//!   (so the container still sees and writes the host's files there), and the missing
//!   directories are made in the tmpfs. When `A` is `/`, the shadow is a new root (under
//!   the container's directory in weft's state dir) and the container is chrooted into it.
//!   Files a container creates directly in a shadowed directory live in the tmpfs and go
//!   with the container.
//! - `mountPath` inside another volume: made inside that volume's directory when weft owns
//!   it (emptyDir, configMap, ...); inside a hostPath volume it must already exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// The host's filesystem as the planner sees it.
pub trait FsView {
    /// What is at `p`, following symlinks; None if nothing.
    fn kind(&self, p: &Path) -> Option<Kind>;
    /// The entries of a directory (symlinks not followed).
    fn list(&self, dir: &Path) -> Vec<(String, Kind)>;
    /// `p` with symlinks resolved (it exists).
    fn real(&self, p: &Path) -> PathBuf;
}

/// One volume mount of a container.
#[derive(Clone, Debug, PartialEq)]
pub struct MountReq {
    /// The host path that appears at `target` (a volume's dir, or a file/dir in it).
    pub src: PathBuf,
    /// `mountPath`, absolute inside the container.
    pub target: PathBuf,
    pub read_only: bool,
    /// Whether `src` is a directory (else a file).
    pub dir: bool,
    /// How to name it in errors: `volumeMounts[0] (volume "data")`.
    pub what: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Bind { src: PathBuf, dst: PathBuf, optional: bool },
    ReadOnly { dst: PathBuf },
    Tmpfs { dst: PathBuf },
    Mkdir { path: PathBuf },
    Touch { path: PathBuf },
    Symlink { target: PathBuf, path: PathBuf },
    /// chroot into `root`; the last op.
    Chroot { root: PathBuf },
}

#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Directories to create (on the host, under weft's own dirs) before the container starts.
    pub prepare_dirs: Vec<PathBuf>,
    /// Empty files to create likewise (mount points for file volumes inside volumes).
    pub prepare_files: Vec<PathBuf>,
    /// What the container's process does in its private mount namespace, in order.
    pub ops: Vec<Op>,
}

impl Plan {
    pub fn chroots(&self) -> bool {
        matches!(self.ops.last(), Some(Op::Chroot { .. }))
    }
}

/// Normalizes an absolute container path; `..` is refused.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn depth(p: &Path) -> usize {
    p.components().count()
}

/// Plans the mounts. `scratch` is a directory weft owns for this container (new roots
/// and staging points go there); `owned` is the pod's directory, inside which missing
/// mount points may simply be created.
pub fn plan(mounts: &[MountReq], fs: &dyn FsView, scratch: &Path, owned: &Path) -> Result<Plan, String> {
    let mut reqs: Vec<MountReq> = Vec::new();
    for m in mounts {
        let t = normalize(&m.target).ok_or_else(|| format!("{}: mountPath {:?} must not contain '..'", m.what, m.target))?;
        if t == Path::new("/") {
            return Err(format!("{}: mountPath \"/\" would hide the whole host from the container; mount the volume at a directory", m.what));
        }
        reqs.push(MountReq { target: t, ..m.clone() });
    }
    reqs.sort_by_key(|m| depth(&m.target));
    // Targets not inside another mount are host paths: resolve symlinks in the part
    // that exists, so that every path below is a real one.
    let targets: Vec<PathBuf> = reqs.iter().map(|m| m.target.clone()).collect();
    for m in reqs.iter_mut() {
        if outer_mount(&targets, &m.target).is_none() {
            m.target = real_prefix(fs, &m.target);
        }
    }
    let targets: Vec<PathBuf> = reqs.iter().map(|m| m.target.clone()).collect();

    // Which host directories need a shadow.
    let mut shadows: BTreeSet<PathBuf> = BTreeSet::new();
    for m in &reqs {
        if outer_mount(&targets, &m.target).is_some() || fs.kind(&m.target).is_some() {
            continue;
        }
        let mut a = m.target.parent().unwrap_or(Path::new("/")).to_path_buf();
        loop {
            match fs.kind(&a) {
                Some(Kind::Dir) => break,
                Some(_) => return Err(format!("{}: mountPath {:?} is under {:?}, which is a file on this host", m.what, m.target, a)),
                None => a = a.parent().unwrap_or(Path::new("/")).to_path_buf(),
            }
        }
        shadows.insert(a);
    }

    let mut plan = Plan::default();
    let root = shadows.remove(Path::new("/")).then(|| scratch.join("root"));
    let eff = |p: &Path| -> PathBuf {
        match &root {
            Some(r) => r.join(p.strip_prefix("/").unwrap_or(p)),
            None => p.to_path_buf(),
        }
    };
    if let Some(r) = &root {
        plan.prepare_dirs.push(r.clone());
        plan.ops.push(Op::Tmpfs { dst: r.clone() });
        bind_back(&mut plan, fs, Path::new("/"), Path::new("/"), r);
    }
    let mut shadow_list: Vec<PathBuf> = shadows.into_iter().collect();
    shadow_list.sort_by_key(|p| depth(p));
    for (i, a) in shadow_list.iter().enumerate() {
        let stage = scratch.join(format!("stage-{i}"));
        plan.prepare_dirs.push(stage.clone());
        plan.ops.push(Op::Bind { src: eff(a), dst: stage.clone(), optional: false });
        plan.ops.push(Op::Tmpfs { dst: eff(a) });
        bind_back(&mut plan, fs, a, &stage, &eff(a));
    }

    // Paths made in a shadow's tmpfs, with what they are.
    let mut created: BTreeMap<PathBuf, Kind> = BTreeMap::new();
    for m in &reqs {
        let want = if m.dir { Kind::Dir } else { Kind::File };
        let wrong = |have: &Kind| {
            let (h, w) = (if *have == Kind::Dir { "a directory" } else { "a file" }, if m.dir { "a directory" } else { "a file" });
            format!("{}: mountPath {:?} is {h} here, but the volume is {w}: choose another mountPath", m.what, m.target)
        };
        match outer_mount(&targets, &m.target).map(|i| &reqs[i]) {
            Some(outer) => {
                let inside = outer.src.join(m.target.strip_prefix(&outer.target).unwrap_or(Path::new("")));
                match fs.kind(&inside) {
                    Some(k) if k == want => {}
                    Some(k) => return Err(wrong(&k)),
                    None if inside.starts_with(owned) => {
                        if m.dir {
                            plan.prepare_dirs.push(inside);
                        } else {
                            plan.prepare_files.push(inside);
                        }
                    }
                    None => {
                        return Err(format!(
                            "{}: mountPath {:?} is inside {} whose host path {:?} does not exist: create it on the host or choose another mountPath",
                            m.what, m.target, outer.what, inside
                        ))
                    }
                }
            }
            None => match created.get(&m.target).cloned().or_else(|| fs.kind(&m.target)) {
                Some(k) if k == want => {}
                Some(k) => return Err(wrong(&k)),
                None => {
                    // Inside a shadow: make the missing directories in its tmpfs.
                    let mut missing = Vec::new();
                    let mut p = m.target.parent().unwrap_or(Path::new("/")).to_path_buf();
                    while !created.contains_key(&p) && fs.kind(&p).is_none() {
                        missing.push(p.clone());
                        p = p.parent().unwrap_or(Path::new("/")).to_path_buf();
                    }
                    for d in missing.into_iter().rev() {
                        plan.ops.push(Op::Mkdir { path: eff(&d) });
                        created.insert(d, Kind::Dir);
                    }
                    plan.ops.push(if m.dir { Op::Mkdir { path: eff(&m.target) } } else { Op::Touch { path: eff(&m.target) } });
                    created.insert(m.target.clone(), want.clone());
                }
            },
        }
        plan.ops.push(Op::Bind { src: m.src.clone(), dst: eff(&m.target), optional: false });
        if m.read_only {
            plan.ops.push(Op::ReadOnly { dst: eff(&m.target) });
        }
    }
    if let Some(r) = root {
        plan.ops.push(Op::Chroot { root: r });
    }
    Ok(plan)
}

/// The index of the deepest other mount whose target contains `t`.
fn outer_mount(targets: &[PathBuf], t: &Path) -> Option<usize> {
    targets.iter().enumerate().filter(|(_, o)| o.as_path() != t && t.starts_with(o)).max_by_key(|(_, o)| depth(o)).map(|(i, _)| i)
}

/// `p` with its longest existing prefix resolved through symlinks.
fn real_prefix(fs: &dyn FsView, p: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = p.to_path_buf();
    while fs.kind(&cur).is_none() {
        match (cur.file_name().map(|n| n.to_os_string()), cur.parent()) {
            (Some(n), Some(parent)) => {
                rest.push(n);
                cur = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = fs.real(&cur);
    for n in rest.into_iter().rev() {
        out.push(n);
    }
    out
}

/// In a fresh tmpfs at `dst`, recreate each entry of the host directory `dir` and bind
/// it back from `src` (where the original is still visible).
fn bind_back(plan: &mut Plan, fs: &dyn FsView, dir: &Path, src: &Path, dst: &Path) {
    for (name, kind) in fs.list(dir) {
        let (from, to) = (src.join(&name), dst.join(&name));
        match kind {
            Kind::Symlink(target) => plan.ops.push(Op::Symlink { target, path: to }),
            Kind::Dir => {
                plan.ops.push(Op::Mkdir { path: to.clone() });
                plan.ops.push(Op::Bind { src: from, dst: to, optional: true });
            }
            Kind::File => {
                plan.ops.push(Op::Touch { path: to.clone() });
                plan.ops.push(Op::Bind { src: from, dst: to, optional: true });
            }
        }
    }
}

/// The real host filesystem.
pub struct HostFs;

impl FsView for HostFs {
    fn kind(&self, p: &Path) -> Option<Kind> {
        let m = std::fs::metadata(p).ok()?;
        Some(if m.is_dir() { Kind::Dir } else { Kind::File })
    }

    fn list(&self, dir: &Path) -> Vec<(String, Kind)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            let kind = if m.file_type().is_symlink() {
                match std::fs::read_link(e.path()) {
                    Ok(t) => Kind::Symlink(t),
                    Err(_) => continue,
                }
            } else if m.is_dir() {
                Kind::Dir
            } else {
                Kind::File
            };
            out.push((e.file_name().to_string_lossy().to_string(), kind));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn real(&self, p: &Path) -> PathBuf {
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host with these directories, files and symlinks.
    struct Fake(BTreeMap<PathBuf, Kind>);

    fn fake(entries: &[(&str, Kind)]) -> Fake {
        let mut m: BTreeMap<PathBuf, Kind> = entries.iter().map(|(p, k)| (PathBuf::from(p), k.clone())).collect();
        m.insert("/".into(), Kind::Dir);
        Fake(m)
    }

    impl FsView for Fake {
        fn kind(&self, p: &Path) -> Option<Kind> {
            match self.0.get(p)? {
                Kind::Symlink(_) => self.kind(&self.real(p)),
                k => Some(k.clone()),
            }
        }
        fn list(&self, dir: &Path) -> Vec<(String, Kind)> {
            self.0.iter().filter(|(p, _)| p.parent() == Some(dir)).map(|(p, k)| (p.file_name().unwrap().to_string_lossy().to_string(), k.clone())).collect()
        }
        fn real(&self, p: &Path) -> PathBuf {
            match self.0.get(p) {
                Some(Kind::Symlink(t)) => {
                    let mut out = PathBuf::new();
                    for c in p.parent().unwrap().join(t).components() {
                        match c {
                            Component::ParentDir => {
                                out.pop();
                            }
                            c => out.push(c),
                        }
                    }
                    out
                }
                _ => p.to_path_buf(),
            }
        }
    }

    fn req(src: &str, target: &str, dir: bool, ro: bool) -> MountReq {
        MountReq { src: src.into(), target: target.into(), read_only: ro, dir, what: format!("volumeMounts[{target}]") }
    }

    const SCRATCH: &str = "/state/pods/u/containers/c/mnt";
    const POD: &str = "/state/pods/u";

    fn bind(src: &str, dst: &str) -> Op {
        Op::Bind { src: src.into(), dst: dst.into(), optional: false }
    }

    #[test]
    fn an_existing_directory_is_bound_over_privately_and_nothing_else_happens() {
        let fs = fake(&[("/srv", Kind::Dir), ("/srv/www", Kind::Dir)]);
        let p = plan(&[req("/state/pods/u/volumes/web", "/srv/www/", true, true)], &fs, SCRATCH.as_ref(), POD.as_ref()).unwrap();
        assert_eq!(p.ops, vec![bind("/state/pods/u/volumes/web", "/srv/www"), Op::ReadOnly { dst: "/srv/www".into() }]);
        assert!(p.prepare_dirs.is_empty() && !p.chroots());
    }

    #[test]
    fn a_missing_path_under_an_existing_directory_shadows_that_directory() {
        let fs = fake(&[("/etc", Kind::Dir), ("/etc/passwd", Kind::File), ("/etc/ssl", Kind::Dir), ("/etc/mtab", Kind::Symlink("../proc/self/mounts".into()))]);
        let p = plan(&[req("/v/config", "/etc/app/config", true, false)], &fs, SCRATCH.as_ref(), POD.as_ref()).unwrap();
        let stage = format!("{SCRATCH}/stage-0");
        assert_eq!(p.prepare_dirs, vec![PathBuf::from(&stage)]);
        assert_eq!(
            p.ops,
            vec![
                bind("/etc", &stage),
                Op::Tmpfs { dst: "/etc".into() },
                Op::Symlink { target: "../proc/self/mounts".into(), path: "/etc/mtab".into() },
                Op::Touch { path: "/etc/passwd".into() },
                Op::Bind { src: format!("{stage}/passwd").into(), dst: "/etc/passwd".into(), optional: true },
                Op::Mkdir { path: "/etc/ssl".into() },
                Op::Bind { src: format!("{stage}/ssl").into(), dst: "/etc/ssl".into(), optional: true },
                Op::Mkdir { path: "/etc/app".into() },
                Op::Mkdir { path: "/etc/app/config".into() },
                bind("/v/config", "/etc/app/config"),
            ]
        );
    }

    #[test]
    fn a_missing_top_level_path_gets_a_new_root_and_a_chroot() {
        let fs = fake(&[("/usr", Kind::Dir), ("/bin", Kind::Symlink("usr/bin".into())), ("/state", Kind::Dir)]);
        let root = format!("{SCRATCH}/root");
        // The nested mount point is made inside the outer volume's directory (weft's own).
        let p = plan(
            &[req("/state/pods/u/volumes/data", "/data", true, false), req("/state/pods/u/volumes/cache", "/data/cache", true, false)],
            &fs,
            SCRATCH.as_ref(),
            POD.as_ref(),
        )
        .unwrap();
        assert_eq!(p.prepare_dirs, vec![PathBuf::from(&root), PathBuf::from("/state/pods/u/volumes/data/cache")]);
        assert_eq!(
            p.ops,
            vec![
                Op::Tmpfs { dst: root.clone().into() },
                Op::Symlink { target: "usr/bin".into(), path: format!("{root}/bin").into() },
                Op::Mkdir { path: format!("{root}/state").into() },
                Op::Bind { src: "/state".into(), dst: format!("{root}/state").into(), optional: true },
                Op::Mkdir { path: format!("{root}/usr").into() },
                Op::Bind { src: "/usr".into(), dst: format!("{root}/usr").into(), optional: true },
                Op::Mkdir { path: format!("{root}/data").into() },
                bind("/state/pods/u/volumes/data", &format!("{root}/data")),
                bind("/state/pods/u/volumes/cache", &format!("{root}/data/cache")),
                Op::Chroot { root: root.clone().into() },
            ]
        );
        assert!(p.chroots());
    }

    #[test]
    fn a_nested_mount_inside_a_host_path_volume_must_exist() {
        let fs = fake(&[("/srv", Kind::Dir), ("/hostdata", Kind::Dir)]);
        let e = plan(&[req("/hostdata", "/srv", true, false), req("/state/pods/u/volumes/x", "/srv/x", true, false)], &fs, SCRATCH.as_ref(), POD.as_ref()).unwrap_err();
        assert!(e.contains("volumeMounts[/srv/x]") && e.contains("/hostdata/x") && e.contains("does not exist"), "{e}");
    }

    #[test]
    fn a_file_volume_goes_on_a_file_and_a_missing_file_target_is_made_in_the_shadow() {
        let fs = fake(&[("/etc", Kind::Dir), ("/etc/app.conf", Kind::File)]);
        let p = plan(&[req("/v/cm/app.conf", "/etc/app.conf", false, true)], &fs, SCRATCH.as_ref(), POD.as_ref()).unwrap();
        assert_eq!(p.ops, vec![bind("/v/cm/app.conf", "/etc/app.conf"), Op::ReadOnly { dst: "/etc/app.conf".into() }]);
        let p = plan(&[req("/v/cm/other.conf", "/etc/other.conf", false, false)], &fs, SCRATCH.as_ref(), POD.as_ref()).unwrap();
        assert!(p.ops.contains(&Op::Touch { path: "/etc/other.conf".into() }), "{:?}", p.ops);
        let e = plan(&[req("/v/cm", "/etc/app.conf", true, false)], &fs, SCRATCH.as_ref(), POD.as_ref()).unwrap_err();
        assert!(e.contains("is a file here, but the volume is a directory"), "{e}");
    }

    #[test]
    fn symlinked_targets_resolve_to_the_real_directory() {
        let fs = fake(&[("/run", Kind::Dir), ("/var", Kind::Dir), ("/var/run", Kind::Symlink("../run".into()))]);
        let p = plan(&[req("/v/s", "/var/run/app", true, false)], &fs, SCRATCH.as_ref(), POD.as_ref()).unwrap();
        assert!(p.ops.contains(&Op::Tmpfs { dst: "/run".into() }) && p.ops.contains(&bind("/v/s", "/run/app")), "{:?}", p.ops);
    }

    #[test]
    fn parent_steps_and_the_root_are_refused() {
        let fs = fake(&[]);
        assert!(plan(&[req("/v", "/a/../etc", true, false)], &fs, SCRATCH.as_ref(), POD.as_ref()).unwrap_err().contains("'..'"));
        assert!(plan(&[req("/v", "/", true, false)], &fs, SCRATCH.as_ref(), POD.as_ref()).unwrap_err().contains("hide the whole host"));
    }
}
