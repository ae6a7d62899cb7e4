//! xsd:dateTime as SPCoop uses it: read leniently (GovWay reads `yyyy-MM-ddTHH:mm:ss` and
//! ignores fraction and zone), written as local time without a zone, with milliseconds.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// Parses the `yyyy-MM-ddTHH:mm:ss` prefix of a dateTime; the rest (fraction, zone) is ignored.
pub fn parse(s: &str) -> Option<NaiveDateTime> {
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
    // What follows the seconds must at least look like a fraction or a zone.
    let rest = &s[19..];
    if !rest.is_empty() && !rest.starts_with(['.', 'Z', '+', '-']) {
        return None;
    }
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
        assert!(parse("2024-05-02T10:15:03.982Z").is_some());
        assert!(parse("2024-05-02T10:15:03+02:00").is_some());
        assert!(parse("2005-11-10 Errato T12:35:35").is_none());
        assert!(parse("Errata").is_none());
        assert!(parse("2005-13-10T12:35:35").is_none());
        assert!(parse("2005-11-10T24:35:35").is_none());
        assert!(parse("").is_none());
    }
}
