//! weft's built-in `agnhost`: the Kubernetes e2e test image
//! (`registry.k8s.io/e2e-test-images/agnhost`), reimplemented for local mode,
//! where there is no image registry. It covers the subcommands the network e2e
//! tests use, with upstream's flags, defaults, endpoints, output and exit codes.
//!
//! [`run`] takes `agnhost <subcommand> [flags]` and returns the process exit
//! code; the caller exits with it.

mod connect;
mod flags;
mod go_duration;
mod go_errors;
mod go_json;
mod golog;
mod hostname;
mod http_server;
mod listen;
mod netexec;
mod pause;
mod porter;
pub mod sctp;
pub mod sctp_raw;
mod serve_hostname;
mod tls;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "agnhost",
    about = "weft's built-in agnhost (the Kubernetes e2e test image)",
    allow_negative_numbers = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Creates HTTP(S), UDP, and (optionally) SCTP servers with various endpoints.
    Netexec(netexec::Args),
    /// Serves the hostname through HTTP / TCP / UDP on the given port.
    ServeHostname(serve_hostname::Args),
    /// Attempts a TCP, UDP or SCTP connection and returns useful errors.
    Connect(connect::Args),
    /// Pauses the execution.
    Pause(pause::Args),
    /// Serves requested data on ports specified in ENV variables.
    Porter(porter::Args),
}

const IMPLEMENTED: &str = "netexec, serve-hostname, connect, pause, porter";

/// Runs `agnhost <subcommand> [flags]` (`args[0]` is the program name) and
/// returns the exit code. A leading `agnhost` or `/agnhost` after the program
/// name is skipped, so a pod's `command: ["/agnhost", "netexec"]` can be passed
/// through as it is.
pub fn run(args: Vec<String>) -> i32 {
    let mut args = flags::strip_klog(flags::normalize(args));
    if args.get(1).is_some_and(|a| a.rsplit('/').next() == Some("agnhost")) {
        args.remove(1);
    }
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if e.kind() == clap::error::ErrorKind::InvalidSubcommand {
                eprintln!("weft's built-in agnhost implements: {IMPLEMENTED}");
            }
            // Cobra exits 1 on a usage error; help and version exit 0.
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    match cli.cmd {
        Cmd::Connect(a) => connect::run(a),
        Cmd::Netexec(a) => in_runtime(netexec::run(a)),
        Cmd::ServeHostname(a) => in_runtime(serve_hostname::run(a)),
        Cmd::Pause(a) => in_runtime(pause::run(a)),
        Cmd::Porter(a) => in_runtime(porter::run(a, std::env::vars().collect())),
    }
}

/// Parses like cobra/pflag: a repeated flag's last value wins.
fn parse(args: &[String]) -> Result<Cli, clap::Error> {
    let command = Cli::command().mut_subcommands(|s| s.args_override_self(true));
    Cli::from_arg_matches(&command.try_get_matches_from(args)?)
}

/// Runs a server subcommand on its own runtime. Its exit ends the subcommand at
/// once, like Go's os.Exit: tasks still running (a hung shell command, an open
/// connection) are abandoned rather than awaited.
fn in_runtime(fut: impl std::future::Future<Output = i32>) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agnhost: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let code = rt.block_on(fut);
    rt.shutdown_background();
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(args: &[&str]) -> bool {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&flags::normalize(args)).is_ok()
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn go_style_command_lines_parse() {
        assert!(parses(&["agnhost", "netexec", "--http-port=8080", "--udp-port", "-1", "--sctp-port=-1"]));
        assert!(parses(&["agnhost", "netexec", "-http-port=8080", "--udp-port=1", "--udp-port=2"]), "repeated flags: last wins");
        assert!(parses(&["agnhost", "serve-hostname", "--http=false", "--tcp", "--port", "9376"]));
        assert!(parses(&["agnhost", "connect", "127.0.0.1:80", "--timeout", "1s", "--protocol=udp"]));
        assert!(parses(&["agnhost", "connect", "--timeout=1s", "127.0.0.1:80"]));
        assert!(parses(&["agnhost", "pause"]));
        assert!(parses(&["agnhost", "porter", "--json-response"]));
    }

    #[test]
    fn bad_command_lines_are_rejected() {
        assert!(!parses(&["agnhost", "serve-hostname", "--tcp", "false"]), "bools take --flag=value only, as pflag");
        assert!(!parses(&["agnhost", "connect"]));
        assert!(!parses(&["agnhost", "connect", "--timeout=soon", "127.0.0.1:1"]));
        assert!(!parses(&["agnhost", "netexec", "--no-such-flag"]));
    }

    #[test]
    fn a_leading_agnhost_path_is_skipped() {
        assert_eq!(run(vec!["agnhost".into(), "/agnhost".into(), "connect".into()]), 1, "parsed as connect without a destination");
    }
}
