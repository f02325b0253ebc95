//! When each watch is due: cron fire times, deterministic per-watch jitter,
//! one catch-up run after downtime, and backoff for failing watches.
//!
//! Pure: every function takes the time it reasons about as an argument and
//! never reads the clock, so the daemon's timing is unit-tested with an
//! injected clock rather than by sleeping.

use std::time::Duration;

use chrono::{DateTime, Utc};
use std::str::FromStr;

/// The default time zone for schedules.
pub const DEFAULT_TIMEZONE: chrono_tz::Tz = chrono_tz::Europe::London;

/// A schedule in the form the `cron` crate reads, plus its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The expression as the user wrote it.
    pub expression: String,
    /// The parsed schedule (always the 6- or 7-field form). Shared: a
    /// parsed schedule holds a set per field (a `*` year field alone is 131
    /// entries), and a config of 100,000 watches on the default schedule
    /// clones it for every watch and again for the daemon's plan.
    pub cron: std::sync::Arc<cron::Schedule>,
    /// The zone the schedule's times are in.
    pub timezone: chrono_tz::Tz,
}

impl Schedule {
    /// Parses a crontab expression: the standard 5-field form
    /// (`min hour dom month dow`), or the `cron` crate's 6-field form (with
    /// seconds first) and 7-field form (with a year last).
    pub fn parse(expression: &str, timezone: chrono_tz::Tz) -> Result<Self, String> {
        let fields = expression.split_whitespace().count();
        let normalised = match fields {
            5 => format!("0 {expression}"),
            6 | 7 => expression.to_owned(),
            n => {
                return Err(format!(
                    "has {n} fields; use 5 (min hour day-of-month month day-of-week), \
                     6 (seconds first) or 7 (seconds first, year last)"
                ));
            }
        };
        let cron = cron::Schedule::from_str(&normalised).map_err(|e| e.to_string())?;
        // A schedule that can never fire (`* * 31 2 *`) would leave a watch
        // unchecked forever without a word. The reference time is fixed, so
        // this stays pure; a schedule whose fires are all past is caught
        // where the clock may be read (config validation).
        let reference = DateTime::<Utc>::UNIX_EPOCH.with_timezone(&timezone);
        if cron.after(&reference).next().is_none() {
            return Err("never fires (no date matches it)".to_owned());
        }
        Ok(Self {
            expression: expression.to_owned(),
            cron: std::sync::Arc::new(cron),
            timezone,
        })
    }

    /// The next `count` fire times after `now`, in the schedule's zone.
    pub fn upcoming(&self, now: DateTime<Utc>, count: usize) -> Vec<DateTime<chrono_tz::Tz>> {
        self.cron
            .after(&now.with_timezone(&self.timezone))
            .take(count)
            .collect()
    }
}

/// How timing is spread and slowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The most a watch's runs are shifted after their cron time. The shift
    /// is also capped at a tenth of the gap between two fire times, so a
    /// schedule that fires every few seconds is barely moved.
    pub max_jitter: Duration,
    /// The wait after the first failure; doubles with each further failure.
    pub backoff_base: Duration,
    /// The longest wait between attempts of a failing watch.
    pub backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            max_jitter: Duration::from_secs(300),
            backoff_base: Duration::from_secs(300),
            backoff_max: Duration::from_secs(6 * 3600),
        }
    }
}

/// A stable shift for one watch, in `[0, cap)`: the same on every run and
/// every restart (it hashes the watch's name), so 500 watches due at 09:00
/// spread over the window instead of firing at once.
pub fn jitter(watch: &str, cap: Duration) -> Duration {
    let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    if cap_ms == 0 {
        return Duration::ZERO;
    }
    let hash = blake3::hash(watch.as_bytes());
    let bytes: [u8; 8] = hash.as_bytes()[..8].try_into().unwrap_or_default();
    Duration::from_millis(u64::from_le_bytes(bytes) % cap_ms)
}

/// The jitter cap for a schedule: `max_jitter`, but never more than a tenth
/// of the gap between two consecutive fire times after `now`.
fn jitter_cap(schedule: &Schedule, now: DateTime<Utc>, timing: &Timing) -> Duration {
    let fires = schedule.upcoming(now, 2);
    let gap = match fires.as_slice() {
        [first, second] => (*second - *first).to_std().unwrap_or(Duration::ZERO),
        _ => Duration::ZERO,
    };
    timing.max_jitter.min(gap / 10)
}

fn shifted(time: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    add_saturating(time, by)
}

/// `time + by`, or the latest representable time when that overflows: a
/// wait too long to represent is a wait forever, never a panic.
pub fn add_saturating(time: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|delta| time.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `time - by`, or the earliest representable time when that overflows.
pub fn sub_saturating(time: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|delta| time.checked_sub_signed(delta))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The first jittered fire time strictly after `after`.
pub fn next_run(
    schedule: &Schedule,
    watch: &str,
    after: DateTime<Utc>,
    timing: &Timing,
) -> Option<DateTime<Utc>> {
    let offset = jitter(watch, jitter_cap(schedule, after, timing));
    // The fire whose jittered time is after `after` may be the one just
    // before `after` (its jitter pushes it past): look back one fire first.
    let back = sub_saturating(after, offset);
    schedule
        .cron
        .after(&back.with_timezone(&schedule.timezone))
        .map(|fire| shifted(fire.with_timezone(&Utc), offset))
        .find(|time| *time > after)
}

/// The latest jittered fire time at or before `now`.
pub fn previous_run(
    schedule: &Schedule,
    watch: &str,
    now: DateTime<Utc>,
    timing: &Timing,
) -> Option<DateTime<Utc>> {
    let offset = jitter(watch, jitter_cap(schedule, now, timing));
    let back = sub_saturating(now, offset);
    schedule
        .cron
        .after(&back.with_timezone(&schedule.timezone))
        .next_back()
        .map(|fire| shifted(fire.with_timezone(&Utc), offset))
        .filter(|time| *time <= now)
}

/// The wait before a failing watch is tried again.
pub fn backoff(consecutive_failures: u32, timing: &Timing) -> Duration {
    if consecutive_failures == 0 {
        return Duration::ZERO;
    }
    let doublings = consecutive_failures.saturating_sub(1).min(20);
    timing
        .backoff_base
        .saturating_mul(1u32 << doublings)
        .min(timing.backoff_max)
}

/// What the daemon knows about a watch when planning its next run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    /// The last check, if any.
    pub last_check: Option<DateTime<Utc>>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
}

/// When a watch should next run, seen from `now`.
///
/// - Never checked, or a scheduled run was missed while the daemon was
///   down: run now, once (not once per missed fire).
/// - Failing: when the last check plus the backoff has passed (5 minutes,
///   10, 20, … up to `backoff_max`), whatever the schedule says.
/// - Otherwise: the next jittered fire time.
pub fn due(
    schedule: &Schedule,
    watch: &str,
    history: History,
    now: DateTime<Utc>,
    timing: &Timing,
) -> DateTime<Utc> {
    Around::new(schedule, now, timing).due(watch, history, timing)
}

/// One schedule's fire times around one instant, found once: planning
/// 100,000 watches on one schedule (a restart, a reload that changed the
/// daemon's timing) then searches this short list per watch, where
/// [`previous_run`] and [`next_run`] walk the cron iterator four times
/// each (about 3 s of a 100,000-watch restart). Every watch's jitter is
/// under the cap, so the fires that matter to any of them are: the last
/// before `now - cap`, and those from there to the first after `now`.
#[derive(Debug, Clone)]
pub struct Around {
    now: DateTime<Utc>,
    cap: Duration,
    /// In order, in UTC.
    fires: Vec<DateTime<Utc>>,
}

impl Around {
    /// The fires of `schedule` around `now`.
    pub fn new(schedule: &Schedule, now: DateTime<Utc>, timing: &Timing) -> Self {
        let cap = jitter_cap(schedule, now, timing);
        // A second earlier than the earliest shifted `now`: cron's `after`
        // is strict both ways, and a fire exactly there must be listed.
        let start = sub_saturating(now, cap.saturating_add(Duration::from_secs(1)))
            .with_timezone(&schedule.timezone);
        let mut fires: Vec<DateTime<Utc>> = schedule
            .cron
            .after(&start)
            .next_back()
            .map(|fire| fire.with_timezone(&Utc))
            .into_iter()
            .collect();
        for fire in schedule.cron.after(&start) {
            let fire = fire.with_timezone(&Utc);
            fires.push(fire);
            if fire > now {
                break;
            }
        }
        Self { now, cap, fires }
    }

    /// [`due`] for one watch on this schedule, at this instant: the same
    /// answer, from the list.
    pub fn due(&self, watch: &str, history: History, timing: &Timing) -> DateTime<Utc> {
        let now = self.now;
        let Some(last_check) = history.last_check else {
            return now;
        };
        if history.consecutive_failures > 0 {
            // Tried again when the backoff ends, whatever the schedule: a
            // weekday-morning watch whose first check failed is retried after
            // 5 minutes, not on the next weekday; an every-minute watch that
            // keeps failing is slowed to the backoff.
            return shifted(last_check, backoff(history.consecutive_failures, timing)).max(now);
        }
        let offset = jitter(watch, self.cap);
        let back = sub_saturating(now, offset);
        // As `previous_run`: the last fire strictly before `back`, shifted.
        let previous = self.fires.iter().rev().find(|fire| **fire < back);
        if let Some(previous) = previous
            && shifted(*previous, offset) > last_check
        {
            return now;
        }
        // As `next_run`: the first fire strictly after `back`, shifted.
        self.fires
            .iter()
            .find(|fire| **fire > back)
            .map(|fire| shifted(*fire, offset))
            .unwrap_or_else(|| shifted(now, timing.backoff_max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 14, h, m, s)
            .single()
            .expect("valid time")
    }

    fn daily_nine() -> Schedule {
        // 09:00 London time; in January London is on UTC.
        Schedule::parse("0 9 * * *", DEFAULT_TIMEZONE).expect("schedule")
    }

    #[test]
    fn jitter_is_stable_and_bounded() {
        let cap = Duration::from_secs(300);
        assert_eq!(jitter("wnec-stp", cap), jitter("wnec-stp", cap));
        let spread: std::collections::BTreeSet<u64> = (0..500)
            .map(|i| jitter(&format!("watch-{i}"), cap).as_secs())
            .collect();
        assert!(spread.iter().all(|s| *s < 300));
        // 500 watches land on many distinct seconds, not one.
        assert!(spread.len() > 200, "{}", spread.len());
        assert_eq!(jitter("x", Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn next_run_is_the_jittered_fire_after_now() {
        let timing = Timing::default();
        let next = next_run(&daily_nine(), "w", at(8, 0, 0), &timing).expect("next");
        let offset = jitter("w", Duration::from_secs(300));
        assert_eq!(next, shifted(at(9, 0, 0), offset));
        // Just after the jittered time, the next one is tomorrow's.
        let after = next_run(&daily_nine(), "w", next, &timing).expect("next");
        assert_eq!(after - next, chrono::Duration::days(1));
    }

    #[test]
    fn a_missed_run_runs_once_now() {
        let timing = Timing::default();
        let history = History {
            // Last checked three days ago: three 09:00 runs were missed.
            last_check: Some(at(10, 0, 0) - chrono::Duration::days(3)),
            consecutive_failures: 0,
        };
        let now = at(12, 0, 0);
        assert_eq!(due(&daily_nine(), "w", history, now, &timing), now);
        // Having run now, the next is tomorrow's, not another catch-up.
        let caught_up = History {
            last_check: Some(now),
            ..history
        };
        let next = due(&daily_nine(), "w", caught_up, now, &timing);
        assert!(
            next > at(23, 0, 0) && next < at(23, 0, 0) + chrono::Duration::hours(11),
            "{next}"
        );
    }

    #[test]
    fn a_new_watch_runs_at_once() {
        let now = at(12, 0, 0);
        assert_eq!(
            due(
                &daily_nine(),
                "w",
                History::default(),
                now,
                &Timing::default()
            ),
            now
        );
    }

    #[test]
    fn failing_watches_back_off_exponentially_up_to_a_cap() {
        let timing = Timing {
            max_jitter: Duration::ZERO,
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(600),
        };
        assert_eq!(backoff(0, &timing), Duration::ZERO);
        assert_eq!(backoff(1, &timing), Duration::from_secs(60));
        assert_eq!(backoff(3, &timing), Duration::from_secs(240));
        assert_eq!(backoff(30, &timing), Duration::from_secs(600));

        let every_minute = Schedule::parse("* * * * *", DEFAULT_TIMEZONE).expect("schedule");
        let failed_at = at(12, 0, 0);
        let history = History {
            last_check: Some(failed_at),
            consecutive_failures: 3,
        };
        // A every-minute watch that failed three times waits four minutes.
        assert_eq!(
            due(&every_minute, "w", history, at(12, 0, 1), &timing),
            at(12, 4, 0)
        );
    }

    /// Issue 15: a failed first check of a daily watch is retried after the
    /// backoff, not at the next day's run.
    #[test]
    fn a_failing_daily_watch_is_retried_after_the_backoff() {
        let timing = Timing {
            max_jitter: Duration::ZERO,
            ..Timing::default()
        };
        let history = History {
            last_check: Some(at(9, 0, 0)),
            consecutive_failures: 1,
        };
        assert_eq!(
            due(&daily_nine(), "w", history, at(9, 0, 1), &timing),
            at(9, 5, 0)
        );
        let history = History {
            last_check: Some(at(9, 0, 0)),
            consecutive_failures: 20,
        };
        assert_eq!(
            due(&daily_nine(), "w", history, at(9, 0, 1), &timing),
            at(15, 0, 0),
            "capped at six hours"
        );
    }

    #[test]
    fn seconds_level_schedules_get_little_jitter() {
        let every_two_seconds =
            Schedule::parse("*/2 * * * * *", DEFAULT_TIMEZONE).expect("schedule");
        let now = at(12, 0, 0);
        let next = next_run(&every_two_seconds, "w", now, &Timing::default()).expect("next");
        assert!(
            next - now <= chrono::Duration::milliseconds(2_200),
            "{next}"
        );
    }

    /// The answer `due` gave before [`Around`]: four walks of the cron
    /// iterator per watch.
    fn due_by_walking(
        schedule: &Schedule,
        watch: &str,
        history: History,
        now: DateTime<Utc>,
        timing: &Timing,
    ) -> DateTime<Utc> {
        let Some(last_check) = history.last_check else {
            return now;
        };
        if history.consecutive_failures > 0 {
            return shifted(last_check, backoff(history.consecutive_failures, timing)).max(now);
        }
        if let Some(previous) = previous_run(schedule, watch, now, timing)
            && previous > last_check
        {
            return now;
        }
        next_run(schedule, watch, now, timing).unwrap_or_else(|| shifted(now, timing.backoff_max))
    }

    #[test]
    fn around_gives_the_answer_of_walking_the_schedule_for_every_watch() {
        let london: chrono_tz::Tz = "Europe/London".parse().expect("zone");
        let schedules = [
            Schedule::parse("*/5 * * * *", DEFAULT_TIMEZONE).expect("schedule"),
            Schedule::parse("*/15 * * * *", DEFAULT_TIMEZONE).expect("schedule"),
            Schedule::parse("0 9 * * 1-5", london).expect("schedule"),
            Schedule::parse("30 1 * * *", london).expect("schedule"),
            Schedule::parse("*/10 * * * * *", DEFAULT_TIMEZONE).expect("schedule"),
        ];
        let timing = Timing::default();
        // Around fire times (on them, a millisecond off, between). Not in
        // the repeated hour of an autumn clock change: there the cron
        // crate's answer depends on where its walk starts, and the two
        // may pick different fires of that hour.
        let bases = [at(9, 0, 0), at(8, 59, 59), at(12, 7, 30)];
        for schedule in &schedules {
            for base in bases {
                for step_ms in [0_i64, 1, 999, 1000, 61_000, 299_999, 3_600_000] {
                    let now = base + chrono::Duration::milliseconds(step_ms);
                    let around = Around::new(schedule, now, &timing);
                    for i in 0..40 {
                        let watch = format!("watch-{i}");
                        for back_s in [None, Some(1_i64), Some(290), Some(600), Some(86_400 * 3)] {
                            let history = History {
                                last_check: back_s.map(|s| now - chrono::Duration::seconds(s)),
                                consecutive_failures: u32::from(i % 7 == 0),
                            };
                            assert_eq!(
                                around.due(&watch, history, &timing),
                                due_by_walking(schedule, &watch, history, now, &timing),
                                "{} {watch} at {now} after {back_s:?}",
                                schedule.expression
                            );
                        }
                    }
                }
            }
        }
    }
}
