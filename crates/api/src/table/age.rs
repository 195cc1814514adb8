//! Ages as kubectl shows them: the rounding of apimachinery's `duration.HumanDuration`,
//! which keeps two or three significant figures (`90s`, `5m10s`, `3h`, `3d4h`, `2y30d`).

use chrono::{DateTime, TimeDelta, Utc};

/// Renders an elapsed time the way `kubectl get` does.
///
/// Up to one second in the future counts as "now" (`0s`), to tolerate clock skew between
/// the writer and the reader; anything further ahead is `<invalid>`.
pub fn human_duration(d: TimeDelta) -> String {
    // Whole seconds, truncated towards zero as Go's int(d.Seconds()) does.
    let secs = d.num_seconds();
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 2 * 60 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        return with_remainder(minutes, "m", secs % 60, "s");
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return with_remainder(days, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return with_remainder(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

/// `5m` when the remainder is zero, `5m10s` otherwise.
fn with_remainder(major: i64, major_unit: &str, minor: i64, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit}{minor}{minor_unit}")
    }
}

/// Parses a `metav1.Time` / `metav1.MicroTime` string. The zero time (`0001-01-01T00:00:00Z`,
/// which Go writes for an unset time) counts as absent.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    (t.timestamp() != ZERO_TIME_SECS).then_some(t)
}

/// Unix seconds of Go's zero `time.Time` (year 1, January 1st, UTC).
const ZERO_TIME_SECS: i64 = -62_135_596_800;

/// The age of a timestamp field, or `<unknown>` when it is unset, as kube's printers show.
pub(crate) fn since(ts: Option<&serde_json::Value>, now: DateTime<Utc>) -> String {
    match ts.and_then(serde_json::Value::as_str).and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

/// The Age cell: time since `metadata.creationTimestamp`.
pub(crate) fn age(obj: &serde_json::Value, now: DateTime<Utc>) -> String {
    since(obj.pointer("/metadata/creationTimestamp"), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> String {
        human_duration(TimeDelta::seconds(s))
    }

    #[test]
    fn seconds_are_exact_below_two_minutes() {
        assert_eq!(secs(0), "0s");
        assert_eq!(secs(59), "59s");
        assert_eq!(secs(119), "119s");
    }

    #[test]
    fn small_clock_skew_reads_as_now_and_larger_as_invalid() {
        assert_eq!(human_duration(TimeDelta::milliseconds(-1500)), "0s");
        assert_eq!(secs(-1), "0s");
        assert_eq!(secs(-2), "<invalid>");
    }

    #[test]
    fn minutes_keep_seconds_below_ten_minutes() {
        assert_eq!(secs(120), "2m");
        assert_eq!(secs(5 * 60 + 10), "5m10s");
        assert_eq!(secs(9 * 60 + 59), "9m59s");
        assert_eq!(secs(10 * 60 + 30), "10m");
        assert_eq!(secs(179 * 60 + 59), "179m");
    }

    #[test]
    fn hours_keep_minutes_below_eight_hours() {
        assert_eq!(secs(3 * 3600), "3h");
        assert_eq!(secs(3 * 3600 + 25 * 60), "3h25m");
        assert_eq!(secs(8 * 3600 + 25 * 60), "8h");
        assert_eq!(secs(47 * 3600 + 59 * 60), "47h");
    }

    #[test]
    fn days_keep_hours_below_eight_days() {
        assert_eq!(secs(48 * 3600), "2d");
        assert_eq!(secs(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(secs(8 * 86400 + 4 * 3600), "8d");
        assert_eq!(secs(729 * 86400), "729d");
    }

    #[test]
    fn years_keep_days_below_eight_years() {
        assert_eq!(secs(730 * 86400), "2y");
        assert_eq!(secs((2 * 365 + 30) * 86400), "2y30d");
        assert_eq!(secs(9 * 365 * 86400 + 86400), "9y");
    }

    #[test]
    fn unset_or_zero_timestamps_are_unknown() {
        let now = Utc::now();
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(
            since(Some(&serde_json::json!("0001-01-01T00:00:00Z")), now),
            "<unknown>"
        );
        assert_eq!(
            since(Some(&serde_json::json!("not a time")), now),
            "<unknown>"
        );
    }

    #[test]
    fn micro_time_with_fraction_and_offset_parses() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ts = serde_json::json!("2024-05-01T13:54:49.123456+02:00");
        assert_eq!(since(Some(&ts), now), "5m10s");
    }
}
