//! A local cluster for tests: the real `weft up` binary on a temp state dir and a free
//! port, driven by the real kubectl and by kube-rs. Dropping it stops the process.
//!
//! weft makes network namespaces, veths and bridges, so each cluster runs inside a
//! network and mount namespace of its own (held by a `sleep` under `unshare`): all it
//! makes dies with that namespace when the test ends, and the host is never touched.
//! The API, on 127.0.0.1 inside, is reached from the test through a small TCP relay.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    holder: Child,
    /// The namespaces' files, opened from the holder.
    net: std::fs::File,
    mnt: std::fs::File,
    relay_port: u16,
}

/// Privileged tests need root; under CI they must run, never skip.
pub fn require_root() {
    let root = nix::unistd::geteuid().is_root();
    assert!(root, "this test needs root (network namespaces); run the tests as root{}", if std::env::var("CI").as_deref() == Ok("true") { " (CI=true: privileged tests must run)" } else { "" });
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// A cluster with extra `weft up` flags.
    pub fn start_with(extra: &[&str]) -> Cluster {
        require_root();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut holder = Command::new("unshare")
            .args(["--net", "--mount", "--propagation", "private", "--fork", "--kill-child", "sleep", "100000"])
            .stdout(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)");
        // The sleep inside is the unshare's only child.
        let deadline = Instant::now() + Duration::from_secs(5);
        let inner = loop {
            let kids = std::fs::read_to_string(format!("/proc/{}/task/{}/children", holder.id(), holder.id())).unwrap_or_default();
            if let Some(pid) = kids.split_whitespace().next() {
                break pid.to_string();
            }
            assert!(Instant::now() < deadline, "unshare did not start its child");
            std::thread::sleep(Duration::from_millis(10));
        };
        let net = std::fs::File::open(format!("/proc/{inner}/ns/net")).unwrap();
        let mnt = std::fs::File::open(format!("/proc/{inner}/ns/mnt")).unwrap();
        let _ = holder.try_wait();
        let mut c = Cluster { dir, child: None, holder, net, mnt, relay_port: 0 };
        c.inside(Command::new("ip").args(["link", "set", "lo", "up"])).status().expect("ip link set lo up");
        c.up_with(extra);
        c
    }

    /// A command that runs inside the cluster's namespaces.
    pub fn inside<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        let net = self.net.as_raw_fd();
        let mnt = self.mnt.as_raw_fd();
        // SAFETY: only setns syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                nix::sched::setns(BorrowedFd::borrow_raw(net), nix::sched::CloneFlags::CLONE_NEWNET)?;
                nix::sched::setns(BorrowedFd::borrow_raw(mnt), nix::sched::CloneFlags::CLONE_NEWNS)?;
                Ok(())
            })
        }
    }

    /// Runs a host command inside the cluster's network namespace (and mounts).
    pub fn sh(&self, script: &str) -> Output {
        self.inside(Command::new("sh").args(["-c", script])).output().expect("sh")
    }

    /// Starts a relay from 127.0.0.1 on the host side to the API inside; returns its port.
    fn relay(&self, api_port: u16) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let net = self.net.try_clone().unwrap();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let net = net.try_clone().unwrap();
                std::thread::spawn(move || {
                    // This thread joins the cluster's netns, so its upstream socket is inside.
                    if nix::sched::setns(net.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                        return;
                    }
                    let Ok(up) = TcpStream::connect(("127.0.0.1", api_port)) else { return };
                    let (mut a, mut b) = (conn.try_clone().unwrap(), up.try_clone().unwrap());
                    let t = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut a, &mut b);
                        let _ = b.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut up, mut conn) = (up, conn);
                    let _ = std::io::copy(&mut up, &mut conn);
                    let _ = conn.shutdown(std::net::Shutdown::Write);
                    let _ = t.join();
                });
            }
        });
        port
    }

    pub fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The kubeconfig for the test side (through the relay).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.test")
    }

    /// Starts (or restarts) `weft up` on this state dir and waits until it is ready.
    pub fn up(&mut self) {
        self.up_with(&[]);
    }

    pub fn up_with(&mut self, extra: &[&str]) {
        let written = self.dir.path().join("kubeconfig");
        let _ = std::fs::remove_file(&written);
        let _ = std::fs::remove_file(self.kubeconfig());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("weft.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
        cmd.args(["up", "--state-dir"])
            .arg(self.dir.path())
            .args(["--api-port", "0", "--nodes", "2", "--bookmark-interval", "1"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log);
        let child = self.inside(&mut cmd).spawn().expect("starting weft up");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if !self.kubeconfig().exists() && written.exists() {
                let mut text = String::new();
                if std::fs::File::open(&written).and_then(|mut f| f.read_to_string(&mut text)).is_ok() {
                    if let Some(port) = text.split("https://127.0.0.1:").nth(1).and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()).and_then(|p| p.parse::<u16>().ok()) {
                        self.relay_port = self.relay(port);
                        std::fs::write(self.kubeconfig(), text.replace(&format!("https://127.0.0.1:{port}"), &format!("https://127.0.0.1:{}", self.relay_port))).unwrap();
                    }
                }
            }
            if self.kubeconfig().exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    break;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("weft up exited with {status}; log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "weft up not ready in 30s; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weft.log")).unwrap_or_default()
    }

    /// Stops weft with SIGTERM, as Ctrl-C would.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the `weft up` process has exited (by other means than this harness)
    /// within `secs` seconds.
    pub fn exited_within(&mut self, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            match self.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(_))) | None => {
                    self.child = None;
                    return true;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        false
    }

    /// Kills weft with SIGKILL: no shutdown path runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl").args(args).env("KUBECONFIG", self.kubeconfig()).env_remove("KUBERNETES_SERVICE_HOST").output().expect("running kubectl")
    }

    /// kubectl with a manifest on stdin (`-f -`).
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// kubectl that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn apply(&self, manifest: &str) -> String {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], manifest);
        assert!(out.status.success(), "kubectl apply failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(self.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await.unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// Polls `f` until it returns true (or panics after `secs`).
    /// Waits (up to `secs`) for pod `name` to run with an IP; returns the IP.
    pub fn wait_running(&self, name: &str, secs: u64) -> String {
        self.eventually(secs, &format!("pod {name} running with an IP"), || self.ok(&["get", "pod", name, "-o", "jsonpath={.status.phase} {.status.podIP}"]).starts_with("Running 1"));
        self.ok(&["get", "pod", name, "-o", "jsonpath={.status.podIP}"])
    }

    /// Pod `name`'s directory on its node (sandbox netns, containers, volumes).
    pub fn pod_dir(&self, name: &str) -> PathBuf {
        let uid = self.ok(&["get", "pod", name, "-o", "jsonpath={.metadata.uid}"]);
        let node = self.ok(&["get", "pod", name, "-o", "jsonpath={.spec.nodeName}"]);
        self.state_dir().join("nodes").join(node).join("pods").join(uid)
    }

    /// Runs `script` with a host shell inside pod `name`'s network namespace; stdout then stderr.
    pub fn in_pod(&self, name: &str, script: &str) -> String {
        let out = self.sh(&format!("nsenter --net={} sh -c '{script}'", self.pod_dir(name).join("netns").display()));
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    }

    pub fn eventually(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}; log tail:\n{}", tail(&self.log()));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Lines of a child's stdout, as they arrive.
pub fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        // Whatever weft left (containers of a killed weft) goes, then the namespaces.
        let mut down = Command::new(env!("CARGO_BIN_EXE_weft"));
        down.args(["down", "--state-dir"]).arg(self.dir.path()).stdout(Stdio::null()).stderr(Stdio::null());
        let _ = self.inside(&mut down).status();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
