//! Go-style command lines (cobra/pflag and Go's `flag`) on top of clap.

/// Rewrites single-dash long flags (`-http-port=8080`, Go's `flag` style) to
/// the double-dash form clap parses. Negative numbers (`-1`) and one-letter
/// shorthands (`-h`) are left alone; nothing after `--` is touched.
pub fn normalize(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || rest {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let b = arg.as_bytes();
        let single_dash_long = b.len() > 2 && b[0] == b'-' && b[1].is_ascii_alphabetic() && b[2] != b'=';
        out.push(if single_dash_long { format!("-{arg}") } else { arg });
    }
    out
}

/// klog's flags, which agnhost accepts on every subcommand (some e2e tests
/// pass them) and weft ignores: (name, takes a value).
const KLOG_FLAGS: [(&str, bool); 13] = [
    ("v", true),
    ("vmodule", true),
    ("log_dir", true),
    ("log_file", true),
    ("log_file_max_size", true),
    ("stderrthreshold", true),
    ("log_backtrace_at", true),
    ("logtostderr", false),
    ("alsologtostderr", false),
    ("add_dir_header", false),
    ("skip_headers", false),
    ("skip_log_headers", false),
    ("one_output", false),
];

/// Drops klog flags (`--v=4`, `-v 4`, `--logtostderr`) from a normalized
/// command line.
pub fn strip_klog(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter().enumerate();
    while let Some((i, arg)) = iter.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(iter.map(|(_, a)| a));
            break;
        }
        let name = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-').filter(|n| n.starts_with('v')));
        let klog = name.filter(|_| i > 0).and_then(|n| {
            let (flag, inline) = match n.split_once('=') {
                Some((f, _)) => (f, true),
                None => (n, false),
            };
            KLOG_FLAGS.iter().find(|(k, _)| *k == flag).map(|(_, takes)| *takes && !inline)
        });
        match klog {
            Some(true) => {
                iter.next();
            }
            Some(false) => {}
            None => out.push(arg),
        }
    }
    out
}

/// Go's strconv.ParseBool, which pflag uses for `--flag=value` booleans.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// Go's strconv.ParseInt(s, 0, 64), which pflag uses for int flags: decimal,
/// or 0x/0o/0b prefixed, with an optional sign and `_` separators.
pub fn parse_go_int(s: &str) -> Result<i64, String> {
    let err = || format!("strconv.ParseInt: parsing {s:?}: invalid syntax");
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    let digits = if radix != 10 { digits.replace('_', "") } else { digits };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(err());
    }
    let v = i64::from_str_radix(&digits, radix).map_err(|_| err())?;
    Ok(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            normalize(v(&["agnhost", "netexec", "-http-port=80", "-udp-port", "-1", "-h", "--tcp"])),
            v(&["agnhost", "netexec", "--http-port=80", "--udp-port", "-1", "-h", "--tcp"])
        );
    }

    #[test]
    fn nothing_after_double_dash_is_rewritten() {
        assert_eq!(normalize(v(&["a", "--", "-foo"])), v(&["a", "--", "-foo"]));
    }

    #[test]
    fn klog_flags_are_dropped_with_their_values() {
        assert_eq!(
            strip_klog(v(&["agnhost", "netexec", "--v=4", "-v", "2", "--logtostderr", "--http-port=1", "--vmodule", "x=1", "--", "--v=1"])),
            v(&["agnhost", "netexec", "--http-port=1", "--", "--v=1"])
        );
    }

    #[test]
    fn go_bools_and_ints_parse_like_strconv() {
        assert_eq!(parse_go_bool("F"), Ok(false));
        assert_eq!(parse_go_bool("True"), Ok(true));
        assert!(parse_go_bool("yes").is_err());
        assert_eq!(parse_go_int("-1"), Ok(-1));
        assert_eq!(parse_go_int("0x1F"), Ok(31));
        assert_eq!(parse_go_int("010"), Ok(8));
        assert_eq!(parse_go_int("0"), Ok(0));
        assert!(parse_go_int("8o80").is_err());
        assert!(parse_go_int("").is_err());
    }
}
