//! The daemon's plan: every watch and when it is next due, indexed both by
//! name and by due time, so the main loop's questions ("what is due now?",
//! "when is the next one due?") cost O(log n) plus what they return, not a
//! scan of every watch on every turn of the loop.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};

use crate::config::Watch;
use crate::core::schedule::{Around, History, Timing};
use crate::store::WatchState;

/// Due times for many watches at one instant (start-up, a reload): the
/// fires around that instant are found once per schedule, not walked
/// again for each of 100,000 watches that share it.
pub(super) struct Batch {
    now: DateTime<Utc>,
    timing: Timing,
    around: std::collections::HashMap<(usize, chrono_tz::Tz), Around>,
}

impl Batch {
    pub(super) fn new(now: DateTime<Utc>, timing: Timing) -> Self {
        Self {
            now,
            timing,
            around: std::collections::HashMap::new(),
        }
    }

    /// When `watch` is due, from its planning inputs; never while paused.
    pub(super) fn due(&mut self, watch: &Watch, inputs: Inputs) -> DateTime<Utc> {
        if inputs.paused {
            // Paused: never due until `tidings resume`.
            return DateTime::<Utc>::MAX_UTC;
        }
        let history = History {
            last_check: inputs.last_check,
            consecutive_failures: inputs.consecutive_failures,
        };
        let schedule = &watch.schedule;
        // Watches share one parsed schedule per expression (an `Arc`), so
        // its address names it; a schedule parsed apart gets its own entry.
        let key = (
            std::sync::Arc::as_ptr(&schedule.cron) as usize,
            schedule.timezone,
        );
        let (now, timing) = (self.now, self.timing);
        self.around
            .entry(key)
            .or_insert_with(|| Around::new(schedule, now, &timing))
            .due(&watch.name, history, &timing)
    }
}

/// What planning a watch takes besides its schedule and the timing: its
/// last check, its failures in a row (the backoff) and whether it is
/// paused. The plan keeps them for every watch, current after each of its
/// checks and each pause or resume, so that a reload which moves every
/// watch's due time (a new default schedule, time zone or `[daemon]`
/// timing) plans 100,000 watches from memory instead of reading every
/// stored state again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Inputs {
    pub(super) last_check: Option<DateTime<Utc>>,
    pub(super) consecutive_failures: u32,
    pub(super) paused: bool,
}

impl Inputs {
    /// A watch's inputs from its stored state (none: never checked) and
    /// whether the store has it paused.
    pub(super) fn stored(state: Option<&WatchState>, paused: bool) -> Self {
        Self {
            last_check: state.and_then(|s| s.last_check),
            consecutive_failures: state.map_or(0, |s| s.consecutive_failures),
            paused,
        }
    }
}

/// A watch and when it is next due.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) watch: Watch,
    pub(super) due: DateTime<Utc>,
    /// What it was planned from. The last check is also what `tidings
    /// status` names the oldest from, without reading every stored state.
    pub(super) inputs: Inputs,
}

/// Every planned watch by name, and the same entries ordered by due time.
#[derive(Debug, Default)]
pub(super) struct Plan {
    by_name: BTreeMap<String, Planned>,
    by_due: BTreeSet<(DateTime<Utc>, String)>,
}

impl Plan {
    pub(super) fn len(&self) -> usize {
        self.by_name.len()
    }

    pub(super) fn get(&self, name: &str) -> Option<&Planned> {
        self.by_name.get(name)
    }

    pub(super) fn contains_key(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Every entry, by name.
    pub(super) fn values(&self) -> impl Iterator<Item = &Planned> {
        self.by_name.values()
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &String> {
        self.by_name.keys()
    }

    /// Adds a watch, or replaces its entry, with the inputs it was planned
    /// from.
    pub(super) fn insert(&mut self, watch: Watch, inputs: Inputs, due: DateTime<Utc>) {
        if let Some(planned) = self.by_name.get_mut(&watch.name) {
            planned.watch = watch;
            planned.inputs = inputs;
            Self::move_due(&mut self.by_due, planned, due);
            return;
        }
        let name = watch.name.clone();
        self.by_name
            .insert(name.clone(), Planned { watch, due, inputs });
        self.by_due.insert((due, name));
    }

    /// Moves an entry in the due index; nothing to do when it stays.
    fn move_due(
        by_due: &mut BTreeSet<(DateTime<Utc>, String)>,
        planned: &mut Planned,
        due: DateTime<Utc>,
    ) {
        if planned.due == due {
            return;
        }
        // The index's old key gives its name back, so a move allocates
        // nothing: a reload may move 100,000 entries.
        let key = (planned.due, planned.watch.name.clone());
        let name = by_due.take(&key).map_or(key.1, |(_, name)| name);
        planned.due = due;
        by_due.insert((due, name));
    }

    /// Puts `watch` in the place of its entry. When `keeps_due(old, new)`
    /// says the entry's timing still holds, the due time stays (one
    /// look-up per watch for a reload that leaves 100,000 as they were);
    /// otherwise the entry is planned again by `due` from the inputs it
    /// already holds, without reading the store. A watch with no entry
    /// comes back, to be planned from its stored state and
    /// [`Plan::insert`]ed.
    pub(super) fn replace(
        &mut self,
        watch: Watch,
        keeps_due: impl FnOnce(&Watch, &Watch) -> bool,
        due: impl FnOnce(&Watch, Inputs) -> DateTime<Utc>,
    ) -> Option<Watch> {
        let Some(planned) = self.by_name.get_mut(&watch.name) else {
            return Some(watch);
        };
        if !keeps_due(&planned.watch, &watch) {
            let next = due(&watch, planned.inputs);
            Self::move_due(&mut self.by_due, planned, next);
        }
        planned.watch = watch;
        None
    }

    /// The inputs a watch was planned from; unknown names have none.
    pub(super) fn inputs(&self, name: &str) -> Option<Inputs> {
        self.by_name.get(name).map(|planned| planned.inputs)
    }

    /// Records what a watch's next planning starts from (after its check,
    /// a pause or resume, a fresh read of the store); unknown names are
    /// ignored.
    pub(super) fn set_inputs(&mut self, name: &str, inputs: Inputs) {
        if let Some(planned) = self.by_name.get_mut(name) {
            planned.inputs = inputs;
        }
    }

    pub(super) fn remove(&mut self, name: &str) {
        if let Some(old) = self.by_name.remove(name) {
            self.by_due.remove(&(old.due, name.to_owned()));
        }
    }

    /// Moves a planned watch to a new due time; unknown names are ignored.
    pub(super) fn set_due(&mut self, name: &str, due: DateTime<Utc>) {
        if let Some(planned) = self.by_name.get_mut(name) {
            Self::move_due(&mut self.by_due, planned, due);
        }
    }

    /// Watches due at `now` and not in `running`, earliest first.
    pub(super) fn due<'a>(
        &'a self,
        now: DateTime<Utc>,
        running: &'a HashSet<String>,
    ) -> impl Iterator<Item = &'a Planned> + 'a {
        self.by_due
            .iter()
            .take_while(move |(due, _)| *due <= now)
            .filter(move |(_, name)| !running.contains(name))
            .filter_map(|(_, name)| self.by_name.get(name))
    }

    /// The earliest due time of a watch that `skip` does not leave out,
    /// and its name.
    pub(super) fn next_due_named(
        &self,
        skip: impl Fn(&str) -> bool,
    ) -> Option<(DateTime<Utc>, &str)> {
        self.by_due
            .iter()
            .find(|(due, name)| !skip(name) && *due < DateTime::<Utc>::MAX_UTC)
            .map(|(due, name)| (*due, name.as_str()))
    }

    /// The earliest due time of a watch not in `running`.
    pub(super) fn next_due(&self, running: &HashSet<String>) -> Option<DateTime<Utc>> {
        self.by_due
            .iter()
            .find(|(_, name)| !running.contains(name))
            .map(|(due, _)| *due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(name: &str) -> Watch {
        let text = format!(
            "[[watch]]\nname = \"{name}\"\nurl = \"http://127.0.0.1/{name}\"\nschedule = \"0 9 * * *\"\n"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tidings.toml");
        std::fs::write(&path, text).expect("write");
        let config = crate::config::load(&path).expect("config");
        config.watches.into_iter().next().expect("one watch")
    }

    #[test]
    fn due_and_next_due_follow_set_due_and_skip_running() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0).expect("time");
        let mut plan = Plan::default();
        plan.insert(watch("a"), Inputs::default(), t(30));
        plan.insert(watch("b"), Inputs::default(), t(10));
        plan.insert(watch("c"), Inputs::default(), t(20));
        let none = HashSet::new();
        let names = |plan: &Plan, now, running| {
            plan.due(now, running)
                .map(|p: &Planned| p.watch.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&plan, t(20), &none), ["b", "c"]);
        assert_eq!(plan.next_due(&none), Some(t(10)));
        let running: HashSet<String> = ["b".to_owned()].into();
        assert_eq!(names(&plan, t(20), &running), ["c"]);
        assert_eq!(plan.next_due(&running), Some(t(20)));
        plan.set_due("b", t(40));
        plan.remove("c");
        assert_eq!(names(&plan, t(35), &none), ["a"]);
        plan.insert(watch("a"), Inputs::default(), t(50));
        assert_eq!(plan.next_due(&none), Some(t(40)));
        assert_eq!(plan.len(), 2);
        // Replacing an entry with the same due time (a reload) keeps it due.
        plan.insert(watch("b"), Inputs::default(), t(40));
        assert_eq!(names(&plan, t(45), &none), ["b"]);
        assert_eq!(names(&plan, t(55), &none), ["b", "a"]);
        assert_eq!(plan.len(), 2);
    }

    #[test]
    fn replace_keeps_the_due_time_only_when_told_and_gives_back_new_watches() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0).expect("time");
        let mut plan = Plan::default();
        plan.insert(watch("a"), Inputs::default(), t(10));
        plan.insert(watch("b"), Inputs::default(), t(20));
        let mut moved = watch("a");
        moved.url = url::Url::parse("http://127.0.0.1/elsewhere").expect("url");
        let replanned = |_: &Watch, _: Inputs| -> DateTime<Utc> { panic!("not to be planned") };
        assert!(
            plan.replace(moved, |old, new| old.url != new.url, replanned)
                .is_none()
        );
        let a = plan.get("a").expect("a");
        assert_eq!((a.due, a.watch.url.path()), (t(10), "/elsewhere"));
        let back = plan.replace(watch("c"), |_, _| true, replanned);
        assert!(back.is_some_and(|w| w.name == "c") && plan.get("c").is_none());
        let none = HashSet::new();
        assert_eq!(plan.next_due(&none), Some(t(10)));
        assert_eq!(plan.len(), 2);
    }

    #[test]
    fn replace_plans_a_rescheduled_entry_again_from_the_inputs_it_holds() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0).expect("time");
        let mut plan = Plan::default();
        let failing = Inputs {
            last_check: Some(t(-60)),
            consecutive_failures: 3,
            paused: false,
        };
        plan.insert(watch("a"), failing, t(10));
        plan.insert(watch("b"), Inputs::default(), t(20));
        // What a check, then a pause, leave behind.
        let paused = Inputs {
            last_check: Some(t(5)),
            consecutive_failures: 0,
            paused: true,
        };
        plan.set_inputs("b", paused);
        plan.set_inputs("unknown", paused);
        assert_eq!(plan.inputs("b"), Some(paused));
        assert_eq!(plan.inputs("unknown"), None);
        let mut seen = None;
        let back = plan.replace(
            watch("a"),
            |_, _| false,
            |_, inputs| {
                seen = Some(inputs);
                t(30)
            },
        );
        assert!(back.is_none());
        assert_eq!(seen, Some(failing));
        let b = plan.replace(
            watch("b"),
            |_, _| false,
            |_, inputs| {
                assert_eq!(inputs, paused);
                DateTime::<Utc>::MAX_UTC
            },
        );
        assert!(b.is_none());
        let none = HashSet::new();
        // "a" moved in the due index too, and "b" is never due.
        let due: Vec<String> = plan
            .due(t(25), &none)
            .map(|p| p.watch.name.clone())
            .collect();
        assert!(due.is_empty(), "{due:?}");
        assert_eq!(plan.next_due_named(|_| false), Some((t(30), "a")));
        assert_eq!(plan.next_due_named(|name| name == "a"), None);
        assert_eq!(plan.get("a").map(|p| p.inputs), Some(failing));
    }

    #[test]
    fn a_batch_plans_from_the_inputs_alone_pause_and_backoff_included() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("time");
        let timing = Timing {
            max_jitter: std::time::Duration::ZERO,
            backoff_base: std::time::Duration::from_secs(300),
            backoff_max: std::time::Duration::from_secs(6 * 3600),
        };
        let mut batch = Batch::new(now, timing);
        let w = watch("a");
        let checked = Inputs {
            last_check: Some(now - chrono::Duration::minutes(1)),
            consecutive_failures: 0,
            paused: false,
        };
        // Never checked: now. Checked a minute ago: the next daily fire.
        assert_eq!(batch.due(&w, Inputs::default()), now);
        let scheduled = batch.due(&w, checked);
        assert!(
            scheduled > now + chrono::Duration::minutes(30),
            "{scheduled}"
        );
        // Three failures in a row: the backoff (5 min doubled twice) from
        // the last check, whatever the schedule.
        let failing = Inputs {
            consecutive_failures: 3,
            ..checked
        };
        assert_eq!(
            batch.due(&w, failing),
            now - chrono::Duration::minutes(1) + chrono::Duration::minutes(20)
        );
        let paused = Inputs {
            paused: true,
            ..failing
        };
        assert_eq!(batch.due(&w, paused), DateTime::<Utc>::MAX_UTC);
        // The same answers as planning from a stored state.
        let state = WatchState {
            last_check: failing.last_check,
            consecutive_failures: 3,
            ..WatchState::default()
        };
        assert_eq!(Inputs::stored(Some(&state), false), failing);
        assert!(Inputs::stored(None, true).paused);
    }
}
