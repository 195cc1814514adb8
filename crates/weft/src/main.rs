//! `weft`: Kubernetes networking in one binary.

mod conformance;
mod dns;
mod down;
mod explain;
mod lb_routes;
mod nodes;
mod observe;
mod service_rules;
mod up;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "weft", version, about = "Kubernetes networking in one binary: a local cluster that the real kubectl drives")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a local cluster in the foreground (Ctrl-C stops it; `up` again resumes it).
    Up(up::UpArgs),
    /// Stop the cluster running on a state dir and remove what it made.
    Down {
        #[arg(long, env = "WEFT_STATE_DIR", default_value_os_t = default_state_dir())]
        state_dir: PathBuf,
        /// Also remove the state dir (all objects, certificates, the kubeconfig).
        #[arg(long)]
        purge: bool,
    },
    /// Show the service proxy's plan for one service on each node, and whether each
    /// node's nftables table matches it.
    ServiceRules {
        /// `namespace/name`, or `name` with --namespace.
        service: String,
        #[arg(short, long)]
        namespace: Option<String>,
        #[arg(long, env = "WEFT_STATE_DIR", default_value_os_t = default_state_dir())]
        state_dir: PathBuf,
    },
    /// Print the policy verdict flow records of every node (filters; --follow; -o json exports).
    Observe(observe::ObserveArgs),
    /// Explain whether NetworkPolicies allow a connection, and which policy and rule decide it.
    Explain(explain::ExplainArgs),
    /// Print weft's version and the Kubernetes API version it serves.
    Version,
    /// Conformance suites that bring up a local cluster of their own.
    Conformance {
        #[command(subcommand)]
        cmd: conformance::ConformanceCmd,
    },
    /// One container's log shim: stamps its output into its log (weft starts these itself).
    #[command(hide = true)]
    LogShim {
        /// The log file (already open on fd 1; named here for `ps`).
        log: PathBuf,
    },
    /// Run weft's built-in agnhost (the Kubernetes e2e test image) for pods that use it.
    #[command(hide = true, disable_help_flag = true)]
    Agnhost {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
}

pub fn default_state_dir() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib")).join(".weft")
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG").unwrap_or_else(|_| "info,kube=warn,hyper=warn,rustls=warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Up(args) => up::run(args),
        Cmd::Down { state_dir, purge } => down::run(&state_dir, purge),
        Cmd::LogShim { .. } => std::process::exit(weft_runtime::log_shim_main()),
        Cmd::ServiceRules { service, namespace, state_dir } => service_rules::run(&state_dir, &service, namespace),
        Cmd::Agnhost { args } => std::process::exit(weft_agnhost::run(std::iter::once("agnhost".to_string()).chain(args).collect())),
        Cmd::Conformance { cmd } => std::process::exit(conformance::run(cmd)?),
        Cmd::Observe(args) => observe::run(args),
        Cmd::Explain(args) => explain::run(args),
        Cmd::Version => {
            println!("weft {} (Kubernetes API v1.33)", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
