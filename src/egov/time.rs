//! xsd:dateTime as SPCoop uses it: `yyyy-MM-ddTHH:mm:ss`, an optional fraction (read, then
//! dropped: the busta counts whole seconds) and an optional zone, which is applied: the value
//! becomes this machine's local time, the time the busta's other dates and the clock are
//! compared in (GovWay ignores the zone, reading a busta stamped `-05:00` as if it were local
//! time). Written as local time without a zone, with milliseconds.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// Parses a dateTime into local time; None when it is not one (a zone that is not `Z` or
/// `±hh:mm` within ±14:00, a fraction without digits, anything else after the seconds).
pub fn parse(s: &str) -> Option<NaiveDateTime> {
    let (t, zona) = parse_zona(s)?;
    match zona {
        None => Some(t),
        Some(z) => Some(
            z.from_local_datetime(&t)
                .single()?
                .with_timezone(&chrono::Local)
                .naive_local(),
        ),
    }
}

/// The local time written (without its fraction) and its zone, if any.
fn parse_zona(s: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let t = parse_locale(s)?;
    let mut rest = &s.trim()[19..];
    if let Some(f) = rest.strip_prefix('.') {
        let cifre = f.bytes().take_while(u8::is_ascii_digit).count();
        if cifre == 0 {
            return None;
        }
        rest = &f[cifre..];
    }
    let zona = match rest.as_bytes() {
        [] => None,
        [b'Z'] => Some(FixedOffset::east_opt(0)?),
        [segno @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) =>
        {
            let ore = i32::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minuti = i32::from((m1 - b'0') * 10 + (m2 - b'0'));
            if minuti > 59 || ore > 14 || (ore == 14 && minuti > 0) {
                return None;
            }
            let sec = (ore * 60 + minuti) * 60;
            FixedOffset::east_opt(if *segno == b'-' { -sec } else { sec })
        }
        _ => return None,
    };
    Some((t, zona))
}

/// The `yyyy-MM-ddTHH:mm:ss` prefix of a dateTime, as written.
fn parse_locale(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(NaiveDateTime::new(date, time))
}

/// Formats as `yyyy-MM-ddTHH:mm:ss.SSS`.
pub fn format(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_read_strict_write() {
        let t = parse("2005-11-10T12:35:35").unwrap();
        assert_eq!(format(t), "2005-11-10T12:35:35.000");
        assert_eq!(
            parse("2024-05-02T10:15:03.120")
                .unwrap()
                .and_utc()
                .timestamp_subsec_millis(),
            0
        );
        // A zone is applied: the same instant in local time.
        let locale = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Local)
                .naive_local()
                .with_nanosecond(0)
                .unwrap()
        };
        use chrono::Timelike;
        for v in [
            "2024-05-02T10:15:03.982Z",
            "2024-05-02T10:15:03+02:00",
            "2024-05-02T10:15:03-05:00",
            "2024-05-02T10:15:03+14:00",
        ] {
            assert_eq!(parse(v), Some(locale(v)), "{v}");
        }
        for v in [
            "2024-05-02T10:15:03+25:00",
            "2024-05-02T10:15:03Zgarbage",
            "2024-05-02T10:15:03+02",
            "2024-05-02T10:15:03+14:30",
            "2024-05-02T10:15:03.",
            "2024-05-02T10:15:03x",
        ] {
            assert_eq!(parse(v), None, "{v}");
        }
        assert!(parse("2005-11-10 Errato T12:35:35").is_none());
        assert!(parse("Errata").is_none());
        assert!(parse("2005-13-10T12:35:35").is_none());
        assert!(parse("2005-11-10T24:35:35").is_none());
        assert!(parse("").is_none());
    }
}
