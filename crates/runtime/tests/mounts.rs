//! Volume mounts carried out for real in a child process's private mount namespace (in
//! a test namespace of its own): over an existing directory, in a shadow of an existing
//! parent, in a new root for a path missing at `/`, read-only; and the host sees none of
//! it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use weft_runtime::mount_exec::Prepared;
use weft_runtime::mount_plan::{self, HostFs, MountReq};

/// Runs `script` under `sh` with the mounts made first, as a container would start.
fn run_with(mounts: &[MountReq], scratch: &Path, owned: &Path, cwd: &Path, script: &str) -> (bool, String) {
    let plan = mount_plan::plan(mounts, &HostFs, scratch, owned).unwrap();
    for d in &plan.prepare_dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let prepared = Arc::new(Prepared::new(&plan, cwd).unwrap());
    let p = prepared.clone();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    // SAFETY: syscalls only, on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
            nix::mount::mount(None::<&str>, "/", None::<&str>, nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE, None::<&str>)?;
            p.run_in_child()
        });
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("spawn failed: {e} during {:?}", prepared.failed_op()));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

fn req(src: &Path, target: &Path, read_only: bool) -> MountReq {
    MountReq { src: src.into(), target: target.into(), read_only, dir: true, what: "volumeMounts[0]".into() }
}

struct Dirs {
    pod: PathBuf,
    vol: PathBuf,
    scratch: PathBuf,
}

fn dirs(base: &Path) -> Dirs {
    let pod = base.join("pod");
    let vol = pod.join("volumes/data");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("hello"), "from the volume").unwrap();
    Dirs { scratch: pod.join("containers/c/mnt"), pod, vol }
}

#[test]
fn a_volume_over_an_existing_directory_is_seen_only_by_the_container() {
    weft_testns::run("mount_existing", |t| {
        let d = dirs(t.dir());
        let host = t.dir().join("srv");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("host-file"), "host").unwrap();
        let (ok, out) = run_with(&[req(&d.vol, &host, false)], &d.scratch, &d.pod, Path::new("/"), &format!("cat {0}/hello; echo; ls {0}; echo written > {0}/new", host.display()));
        assert!(ok, "{out}");
        assert_eq!(out, "from the volume\nhello\n");
        assert_eq!(std::fs::read_to_string(d.vol.join("new")).unwrap(), "written\n", "writes land in the volume");
        assert!(host.join("host-file").exists() && !host.join("hello").exists(), "the host's directory is untouched");
    });
}

#[test]
fn a_missing_path_is_made_in_a_shadow_that_keeps_the_parents_entries() {
    weft_testns::run("mount_shadow", |t| {
        let d = dirs(t.dir());
        let parent = t.dir().join("etc");
        std::fs::create_dir_all(parent.join("ssl")).unwrap();
        std::fs::write(parent.join("keep.conf"), "kept").unwrap();
        let target = parent.join("app/config");
        let script = format!("cat {p}/keep.conf; echo; cat {t}/hello; echo; echo edited > {p}/keep.conf; ls {p}", p = parent.display(), t = target.display());
        let (ok, out) = run_with(&[req(&d.vol, &target, true)], &d.scratch, &d.pod, Path::new("/"), &script);
        assert!(ok, "{out}");
        assert_eq!(out, "kept\nfrom the volume\napp\nkeep.conf\nssl\n");
        assert_eq!(std::fs::read_to_string(parent.join("keep.conf")).unwrap(), "edited\n", "entries bound back write through to the host");
        assert!(!parent.join("app").exists(), "the mount point was not made on the host");
        // Read-only: the container cannot write into the volume.
        let (ok, out) = run_with(&[req(&d.vol, &target, true)], &d.scratch, &d.pod, Path::new("/"), &format!("echo x > {}/nope", target.display()));
        assert!(!ok, "a write to a read-only volume succeeded: {out}");
        assert!(!d.vol.join("nope").exists());
    });
}

#[test]
fn a_path_missing_at_the_root_gets_a_new_root_with_the_host_bound_back() {
    weft_testns::run("mount_new_root", |t| {
        let d = dirs(t.dir());
        let top = PathBuf::from(format!("/weft-test-{}", std::process::id()));
        assert!(!top.exists());
        let target = top.join("data");
        let script = format!("cat {}/hello; echo; pwd; test -x /bin/sh && echo sh-ok; test -f {}/hello && echo host-ok", target.display(), d.vol.display());
        let (ok, out) = run_with(&[req(&d.vol, &target, false)], &d.scratch, &d.pod, &target, &script);
        assert!(ok, "{out}");
        assert_eq!(out, format!("from the volume\n{}\nsh-ok\nhost-ok\n", target.display()));
        assert!(!top.exists(), "the host got {}", top.display());
    });
}

#[test]
fn a_mount_point_inside_an_owned_volume_is_made_there() {
    weft_testns::run("mount_nested", |t| {
        let d = dirs(t.dir());
        let inner = d.pod.join("volumes/cache");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(inner.join("c"), "cache").unwrap();
        let host = t.dir().join("srv");
        std::fs::create_dir_all(&host).unwrap();
        let mounts = [req(&d.vol, &host, false), req(&inner, &host.join("cache"), false)];
        let (ok, out) = run_with(&mounts, &d.scratch, &d.pod, Path::new("/"), &format!("cat {}/cache/c", host.display()));
        assert!(ok, "{out}");
        assert_eq!(out, "cache");
        assert!(d.vol.join("cache").is_dir(), "the nested mount point is made in the outer volume");
    });
}
