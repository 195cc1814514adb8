//! Go's time.Duration as agnhost's flags and query parameters spell it
//! (`1s`, `1.5m`, `300ms`, `1h2m3s`).

use std::time::Duration;

/// A duration in nanoseconds; negative values are kept (Go allows them) and
/// act as zero when waited on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GoDuration(pub i64);

impl GoDuration {
    pub fn to_std(self) -> Duration {
        Duration::from_nanos(self.0.max(0) as u64)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl std::str::FromStr for GoDuration {
    type Err = String;

    /// Go's time.ParseDuration, with its error text.
    fn from_str(orig: &str) -> Result<Self, String> {
        let invalid = || format!("time: invalid duration {orig:?}");
        let (neg, mut s) = match orig.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, orig.strip_prefix('+').unwrap_or(orig)),
        };
        if s == "0" {
            return Ok(GoDuration(0));
        }
        if s.is_empty() {
            return Err(invalid());
        }
        let mut total: f64 = 0.0;
        while !s.is_empty() {
            let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
            let num = &s[..num_end];
            if num.is_empty() || num == "." || num.matches('.').count() > 1 {
                return Err(invalid());
            }
            s = &s[num_end..];
            let unit_end = s.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(s.len());
            let unit = &s[..unit_end];
            s = &s[unit_end..];
            let scale = match unit {
                "ns" => 1.0,
                "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                "h" => 3600e9,
                "" => return Err(format!("time: missing unit in duration {orig:?}")),
                _ => return Err(format!("time: unknown unit {unit:?} in duration {orig:?}")),
            };
            let value: f64 = num.parse().map_err(|_| invalid())?;
            total += value * scale;
        }
        if total > i64::MAX as f64 {
            return Err(invalid());
        }
        let ns = total.round() as i64;
        Ok(GoDuration(if neg { -ns } else { ns }))
    }
}

impl std::fmt::Display for GoDuration {
    /// Go's Duration.String (`1.5s`, `300ms`, `1h2m3s`, `0s`), for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        let frac = |v: u64, unit: u64| -> String {
            let whole = v / unit;
            let rest = v % unit;
            if rest == 0 {
                return whole.to_string();
            }
            let width = unit.to_string().len() - 1;
            let digits = format!("{rest:0width$}");
            format!("{whole}.{}", digits.trim_end_matches('0'))
        };
        if ns == 0 {
            return write!(f, "0s");
        }
        if ns < 1_000 {
            return write!(f, "{sign}{ns}ns");
        }
        if ns < 1_000_000 {
            return write!(f, "{sign}{}\u{b5}s", frac(ns, 1_000));
        }
        if ns < 1_000_000_000 {
            return write!(f, "{sign}{}ms", frac(ns, 1_000_000));
        }
        let secs_total = ns / 1_000_000_000;
        let h = secs_total / 3600;
        let m = (secs_total % 3600) / 60;
        let s = frac(ns % 60_000_000_000, 1_000_000_000);
        match (h, m) {
            (0, 0) => write!(f, "{sign}{s}s"),
            (0, m) => write!(f, "{sign}{m}m{s}s"),
            (h, m) => write!(f, "{sign}{h}h{m}m{s}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GoDuration;

    fn p(s: &str) -> Result<i64, String> {
        s.parse::<GoDuration>().map(|d| d.0)
    }

    #[test]
    fn parses_go_duration_syntax() {
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("1s"), Ok(1_000_000_000));
        assert_eq!(p("1.5m"), Ok(90_000_000_000));
        assert_eq!(p("300ms"), Ok(300_000_000));
        assert_eq!(p("1h2m3s"), Ok(3_723_000_000_000));
        assert_eq!(p("-2us"), Ok(-2_000));
        assert_eq!(p(".5s"), Ok(500_000_000));
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert_eq!(p("1"), Err("time: missing unit in duration \"1\"".into()));
        assert_eq!(p("1x"), Err("time: unknown unit \"x\" in duration \"1x\"".into()));
        assert!(p("").is_err());
        assert!(p("s").is_err());
        assert!(p("1..2s").is_err());
    }

    #[test]
    fn formats_like_go() {
        for (ns, s) in [(0, "0s"), (1_500_000_000, "1.5s"), (300_000_000, "300ms"), (3_723_000_000_000, "1h2m3s"), (60_000_000_000, "1m0s")] {
            assert_eq!(GoDuration(ns).to_string(), s);
        }
    }
}
