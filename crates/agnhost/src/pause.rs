//! `agnhost pause`: prints "Paused" and waits for SIGINT (exit 1) or SIGTERM
//! (exit 2), as upstream; `--delay-shutdown` sleeps before exiting.

use crate::flags::parse_go_int;
use std::io::Write;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of seconds to delay shutdown when receiving SIGTERM/SIGINT.
    #[arg(long, default_value = "0", value_parser = parse_go_int, allow_hyphen_values = true)]
    delay_shutdown: i64,
}

pub async fn run(args: Args) -> i32 {
    // Handlers go in before "Paused" is printed, so a signal sent by whoever
    // waited for that line is never lost to the default action.
    let (mut int, mut term) = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("pause: cannot handle signals: {e}");
            return 1;
        }
    };
    println!("Paused");
    let code = tokio::select! {
        _ = int.recv() => 1,
        _ = term.recv() => 2,
    };
    if args.delay_shutdown > 0 {
        print!("Sleeping {} seconds before exit ...", args.delay_shutdown);
        let _ = std::io::stdout().flush();
        tokio::time::sleep(Duration::from_secs(args.delay_shutdown as u64)).await;
    }
    println!("exiting {code}");
    code
}
