//! Acceptance deadlines: how long a partner user has to accept an offer, as a duration or
//! as business hours of the org's working week, and when the reminder goes out. Pure: the
//! offer's time arrives from the caller.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveTime, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Longest deadline given as a duration: 30 days.
pub const MAX_DEADLINE_SECONDS: u32 = 30 * 24 * 3600;
/// Longest deadline given in business hours.
pub const MAX_BUSINESS_HOURS: u32 = 1_000;

/// How long an offer stands before it lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Deadline {
    /// This many seconds after the offer (`{"seconds": 14400}`).
    Seconds(u32),
    /// This many hours of the org's business hours after the offer
    /// (`{"business_hours": 4}`): time outside them does not count.
    BusinessHours(u32),
}

impl Deadline {
    /// Why the deadline cannot be taken, if it cannot.
    pub fn problem(self) -> Option<String> {
        match self {
            Deadline::Seconds(s) if s == 0 || s > MAX_DEADLINE_SECONDS => {
                Some(format!("seconds: 1 to {MAX_DEADLINE_SECONDS} (30 days)"))
            }
            Deadline::BusinessHours(h) if h == 0 || h > MAX_BUSINESS_HOURS => {
                Some(format!("business_hours: 1 to {MAX_BUSINESS_HOURS}"))
            }
            _ => None,
        }
    }

    /// When an offer made at `at` lapses, counting business hours by `week`.
    pub fn after(self, at: DateTime<Utc>, week: &BusinessHours) -> DateTime<Utc> {
        match self {
            Deadline::Seconds(s) => at + Duration::seconds(i64::from(s)),
            Deadline::BusinessHours(h) => week.add(at, Duration::hours(i64::from(h))),
        }
    }
}

/// The org's working week: the days and the hours of each day (local time at a fixed UTC
/// offset) that business-hour deadlines count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusinessHours {
    /// Offset of the org's local time from UTC, in minutes (-840 to 840).
    pub utc_offset_minutes: i32,
    /// First working hour of a day (0 to 23).
    pub start_hour: u32,
    /// End of the working day (1 to 24, after `start_hour`).
    pub end_hour: u32,
    /// Working days, 1 (Monday) to 7 (Sunday).
    pub days: BTreeSet<u32>,
}

impl Default for BusinessHours {
    /// Monday to Friday, 09:00 to 17:00 UTC.
    fn default() -> Self {
        BusinessHours {
            utc_offset_minutes: 0,
            start_hour: 9,
            end_hour: 17,
            days: (1..=5).collect(),
        }
    }
}

impl BusinessHours {
    /// Why the week cannot be taken, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if !(-840..=840).contains(&self.utc_offset_minutes) {
            return Some("utc_offset_minutes: -840 to 840".into());
        }
        if self.start_hour > 23 || self.end_hour > 24 || self.end_hour <= self.start_hour {
            return Some("start_hour 0 to 23 before end_hour 1 to 24".into());
        }
        if self.days.is_empty() || self.days.iter().any(|d| !(1..=7).contains(d)) {
            return Some("days: at least one of 1 (Monday) to 7 (Sunday)".into());
        }
        None
    }

    fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.utc_offset_minutes * 60)
            .unwrap_or(FixedOffset::east_opt(0).unwrap())
    }

    /// `at` plus `work` of business time. A week that [`problem`](Self::problem) refuses
    /// counts as always open.
    pub fn add(&self, at: DateTime<Utc>, work: Duration) -> DateTime<Utc> {
        if self.problem().is_some() {
            return at + work;
        }
        let offset = self.offset();
        let mut now = at.with_timezone(&offset);
        let mut left = work;
        // At most a week of days without work hours between two working days, and every
        // working day takes at least an hour off `left`: this ends.
        loop {
            let day = now.date_naive();
            let open = offset
                .from_local_datetime(&day.and_time(time(self.start_hour)))
                .single();
            let close = if self.end_hour == 24 {
                offset
                    .from_local_datetime(&day.succ_opt().unwrap_or(day).and_time(NaiveTime::MIN))
                    .single()
            } else {
                offset
                    .from_local_datetime(&day.and_time(time(self.end_hour)))
                    .single()
            };
            let (Some(open), Some(close)) = (open, close) else {
                return at + work;
            };
            if self.days.contains(&now.weekday().number_from_monday()) && now < close {
                let from = now.max(open);
                let today = close - from;
                if left <= today {
                    return (from + left).with_timezone(&Utc);
                }
                left -= today;
            }
            // The start of the next day.
            let next = day.succ_opt().map(|d| d.and_time(NaiveTime::MIN));
            match next.and_then(|n| offset.from_local_datetime(&n).single()) {
                Some(next) => now = next,
                None => return at + work,
            }
            debug_assert!(now.hour() == 0);
        }
    }
}

fn time(hour: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN)
}

/// When the reminder of an offer made at `at` with `deadline` goes out: at `percent` of
/// the time between them (1 to 99).
pub fn reminder(at: DateTime<Utc>, deadline: DateTime<Utc>, percent: u8) -> DateTime<Utc> {
    let span = (deadline - at).num_milliseconds().max(0);
    at + Duration::milliseconds(span * i64::from(percent.clamp(1, 99)) / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_duration_deadline_is_that_long_after_the_offer() {
        let at = utc("2026-12-04T16:00:00Z");
        let week = BusinessHours::default();
        assert_eq!(
            Deadline::Seconds(2).after(at, &week),
            utc("2026-12-04T16:00:02Z")
        );
    }

    #[test]
    fn business_hours_skip_nights_and_weekends() {
        let week = BusinessHours::default();
        // Friday 16:00 + 4 business hours: 1 h on Friday, 3 h from Monday 09:00.
        let friday = utc("2026-12-04T16:00:00Z");
        assert_eq!(
            Deadline::BusinessHours(4).after(friday, &week),
            utc("2026-12-07T12:00:00Z")
        );
        // Saturday night: counted from Monday's opening.
        assert_eq!(
            Deadline::BusinessHours(2).after(utc("2026-12-05T23:00:00Z"), &week),
            utc("2026-12-07T11:00:00Z")
        );
        // Within a day.
        assert_eq!(
            Deadline::BusinessHours(3).after(utc("2026-12-08T10:30:00Z"), &week),
            utc("2026-12-08T13:30:00Z")
        );
        // 8 hours from the opening end at the close, not the next morning.
        assert_eq!(
            Deadline::BusinessHours(8).after(utc("2026-12-08T09:00:00Z"), &week),
            utc("2026-12-08T17:00:00Z")
        );
    }

    #[test]
    fn business_hours_are_local_to_the_org_s_offset() {
        // UTC+1, 09:00-17:00 local = 08:00-16:00 UTC.
        let week = BusinessHours {
            utc_offset_minutes: 60,
            ..BusinessHours::default()
        };
        assert_eq!(
            Deadline::BusinessHours(1).after(utc("2026-12-08T15:30:00Z"), &week),
            utc("2026-12-09T08:30:00Z")
        );
        // A day open until midnight.
        let late = BusinessHours {
            start_hour: 20,
            end_hour: 24,
            days: (1..=7).collect(),
            ..BusinessHours::default()
        };
        assert_eq!(
            Deadline::BusinessHours(5).after(utc("2026-12-08T21:00:00Z"), &late),
            utc("2026-12-09T22:00:00Z")
        );
    }

    #[test]
    fn malformed_deadlines_and_weeks_are_refused() {
        assert!(Deadline::Seconds(0).problem().is_some());
        assert!(Deadline::Seconds(MAX_DEADLINE_SECONDS + 1)
            .problem()
            .is_some());
        assert!(Deadline::BusinessHours(0).problem().is_some());
        assert!(Deadline::BusinessHours(4).problem().is_none());
        let bad = |week: BusinessHours| week.problem().is_some();
        assert!(bad(BusinessHours {
            start_hour: 17,
            end_hour: 9,
            ..Default::default()
        }));
        assert!(bad(BusinessHours {
            end_hour: 25,
            ..Default::default()
        }));
        assert!(bad(BusinessHours {
            days: [0].into(),
            ..Default::default()
        }));
        assert!(bad(BusinessHours {
            days: Default::default(),
            ..Default::default()
        }));
        assert!(bad(BusinessHours {
            utc_offset_minutes: 900,
            ..Default::default()
        }));
        let json: Deadline = serde_json::from_str(r#"{"business_hours": 4}"#).unwrap();
        assert_eq!(json, Deadline::BusinessHours(4));
        assert!(serde_json::from_str::<Deadline>(r#"{"weeks": 4}"#).is_err());
    }

    #[test]
    fn the_reminder_goes_out_at_its_share_of_the_deadline() {
        let at = utc("2026-12-08T10:00:00Z");
        assert_eq!(
            reminder(at, utc("2026-12-08T14:00:00Z"), 75),
            utc("2026-12-08T13:00:00Z")
        );
    }
}
