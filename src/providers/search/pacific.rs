//! The next midnight in America/Los_Angeles, when Google's daily quotas
//! reset. The US rule since 2007 is built in rather than a time-zone
//! database: daylight time from the second Sunday of March, 02:00 PST, to
//! the first Sunday of November, 02:00 PDT. Both changes happen at 02:00,
//! so a midnight is never skipped or repeated.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;
const PST: i64 = -8 * 3600;
const PDT: i64 = -7 * 3600;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of a day count (the inverse's year part).
fn year_of(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

/// The day count of the `nth` Sunday of `month` (1970-01-01 was a Thursday).
fn nth_sunday(year: i64, month: i64, nth: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    let weekday = (first + 4).rem_euclid(7); // 0 = Sunday
    first + (7 - weekday) % 7 + 7 * (nth - 1)
}

/// Los Angeles' offset from UTC at the instant `utc` (seconds).
fn offset_at(utc: i64) -> i64 {
    let year = year_of(utc.div_euclid(DAY));
    let starts = nth_sunday(year, 3, 2) * DAY + 2 * 3600 - PST;
    let ends = nth_sunday(year, 11, 1) * DAY + 2 * 3600 - PDT;
    if (starts..ends).contains(&utc) {
        PDT
    } else {
        PST
    }
}

/// The next midnight in Los Angeles after `now`.
pub fn next_midnight(now: SystemTime) -> SystemTime {
    let utc = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let local = utc + offset_at(utc);
    let midnight_local = (local.div_euclid(DAY) + 1) * DAY;
    // The offset may change before that midnight (a changeover day).
    let guess = midnight_local - offset_at(utc);
    let at = midnight_local - offset_at(guess);
    UNIX_EPOCH + Duration::from_secs(at.max(0) as u64)
}

/// The first instant (UTC) of the month after `now`'s.
pub fn first_of_next_month(now: SystemTime) -> SystemTime {
    let today = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        .div_euclid(DAY);
    let year = year_of(today);
    let next = (1..=12)
        .map(|month| days_from_civil(year, month, 1))
        .find(|first| *first > today)
        .unwrap_or_else(|| days_from_civil(year + 1, 1, 1));
    UNIX_EPOCH + Duration::from_secs((next * DAY).max(0) as u64)
}

/// `YYYY-MM-DD` as that day's first instant, UTC.
pub fn parse_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.trim().get(..10)?.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let secs = days_from_civil(year, month, day) * DAY;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// How long from `now` until Los Angeles' next midnight.
pub fn until_midnight(now: SystemTime) -> Duration {
    next_midnight(now)
        .duration_since(now)
        .unwrap_or(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(year: i64, month: i64, day: i64, hour: i64, minute: i64) -> SystemTime {
        let secs = days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60;
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    }

    #[test]
    fn winter_midnight_is_eight_in_the_morning_utc() {
        // 2026-01-15 20:00 UTC is 12:00 PST; midnight PST is 08:00 UTC.
        assert_eq!(next_midnight(at(2026, 1, 15, 20, 0)), at(2026, 1, 16, 8, 0));
    }

    #[test]
    fn summer_midnight_is_seven_in_the_morning_utc() {
        assert_eq!(next_midnight(at(2026, 7, 1, 20, 0)), at(2026, 7, 2, 7, 0));
        // 06:59 UTC is still 23:59 PDT of the day before.
        assert_eq!(next_midnight(at(2026, 7, 2, 6, 59)), at(2026, 7, 2, 7, 0));
    }

    #[test]
    fn changeover_days_are_handled() {
        // 2026: DST begins Sunday March 8, ends Sunday November 1.
        // Saturday March 7, 12:00 PST: midnight of the 8th is still PST.
        assert_eq!(next_midnight(at(2026, 3, 7, 20, 0)), at(2026, 3, 8, 8, 0));
        // Sunday March 8, 12:00 PDT: the next midnight is PDT.
        assert_eq!(next_midnight(at(2026, 3, 8, 19, 0)), at(2026, 3, 9, 7, 0));
        // Saturday October 31, 12:00 PDT: midnight of November 1 is PDT.
        assert_eq!(
            next_midnight(at(2026, 10, 31, 19, 0)),
            at(2026, 11, 1, 7, 0)
        );
        // Sunday November 1, 12:00 PST: the next midnight is PST.
        assert_eq!(next_midnight(at(2026, 11, 1, 20, 0)), at(2026, 11, 2, 8, 0));
    }

    #[test]
    fn months_and_dates() {
        assert_eq!(
            first_of_next_month(at(2026, 11, 30, 8, 0)),
            at(2026, 12, 1, 0, 0)
        );
        assert_eq!(
            first_of_next_month(at(2026, 12, 31, 23, 0)),
            at(2027, 1, 1, 0, 0)
        );
        assert_eq!(parse_date("2026-12-05"), Some(at(2026, 12, 5, 0, 0)));
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn sundays_are_found() {
        assert_eq!(nth_sunday(2026, 3, 2), days_from_civil(2026, 3, 8));
        assert_eq!(nth_sunday(2027, 11, 1), days_from_civil(2027, 11, 7));
        assert_eq!(year_of(days_from_civil(2026, 12, 31)), 2026);
        assert_eq!(year_of(days_from_civil(2027, 1, 1)), 2027);
    }
}
