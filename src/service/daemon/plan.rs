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

    /// When `watch` is due, from its stored state; never while paused.
    pub(super) fn due(
        &mut self,
        watch: &Watch,
        state: Option<&WatchState>,
        paused: bool,
    ) -> DateTime<Utc> {
        if paused {
            // Paused: never due until `tidings resume`.
            return DateTime::<Utc>::MAX_UTC;
        }
        let history = History {
            last_check: state.and_then(|s| s.last_check),
            consecutive_failures: state.map_or(0, |s| s.consecutive_failures),
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

/// A watch and when it is next due.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) watch: Watch,
    pub(super) due: DateTime<Utc>,
    /// The last check, kept here so that `tidings status` can name the
    /// oldest without reading every watch's state from the store.
    pub(super) last_check: Option<DateTime<Utc>>,
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

    /// Adds a watch, or replaces its entry. A reload replaces every entry,
    /// mostly with the same due time: then the due index is left alone.
    pub(super) fn insert(&mut self, watch: Watch, due: DateTime<Utc>) {
        if let Some(planned) = self.by_name.get_mut(&watch.name) {
            let old = planned.due;
            *planned = Planned {
                watch,
                due,
                last_check: planned.last_check,
            };
            if old != due {
                let name = planned.watch.name.clone();
                self.by_due.remove(&(old, name.clone()));
                self.by_due.insert((due, name));
            }
            return;
        }
        let name = watch.name.clone();
        self.by_name.insert(
            name.clone(),
            Planned {
                watch,
                due,
                last_check: None,
            },
        );
        self.by_due.insert((due, name));
    }

    /// Puts `watch` in its entry's place, keeping the due time, when
    /// `keeps_due(old, new)` says the entry's timing still holds: one
    /// look-up per watch for a reload that leaves 100,000 as they were.
    /// Otherwise the watch comes back, with whether it had an entry, to be
    /// planned anew and [`Plan::insert`]ed.
    pub(super) fn replace(
        &mut self,
        watch: Watch,
        keeps_due: impl FnOnce(&Watch, &Watch) -> bool,
    ) -> Option<(Watch, bool)> {
        match self.by_name.get_mut(&watch.name) {
            Some(planned) if keeps_due(&planned.watch, &watch) => {
                planned.watch = watch;
                None
            }
            Some(_) => Some((watch, true)),
            None => Some((watch, false)),
        }
    }

    /// Records a watch's last check; unknown names are ignored.
    pub(super) fn set_last_check(&mut self, name: &str, checked: Option<DateTime<Utc>>) {
        if let Some(planned) = self.by_name.get_mut(name) {
            planned.last_check = checked;
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
            if planned.due == due {
                return;
            }
            self.by_due.remove(&(planned.due, name.to_owned()));
            planned.due = due;
            self.by_due.insert((due, name.to_owned()));
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

    /// The earliest due time of a watch not in `running`, and its name.
    pub(super) fn next_due_named(
        &self,
        running: &HashSet<String>,
    ) -> Option<(DateTime<Utc>, &str)> {
        self.by_due
            .iter()
            .find(|(due, name)| !running.contains(name) && *due < DateTime::<Utc>::MAX_UTC)
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
        plan.insert(watch("a"), t(30));
        plan.insert(watch("b"), t(10));
        plan.insert(watch("c"), t(20));
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
        plan.insert(watch("a"), t(50));
        assert_eq!(plan.next_due(&none), Some(t(40)));
        assert_eq!(plan.len(), 2);
        // Replacing an entry with the same due time (a reload) keeps it due.
        plan.insert(watch("b"), t(40));
        assert_eq!(names(&plan, t(45), &none), ["b"]);
        assert_eq!(names(&plan, t(55), &none), ["b", "a"]);
        assert_eq!(plan.len(), 2);
    }

    #[test]
    fn replace_keeps_the_due_time_only_when_told_and_gives_back_the_rest() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0).expect("time");
        let mut plan = Plan::default();
        plan.insert(watch("a"), t(10));
        plan.insert(watch("b"), t(20));
        let mut moved = watch("a");
        moved.url = url::Url::parse("http://127.0.0.1/elsewhere").expect("url");
        assert!(plan.replace(moved, |old, new| old.url != new.url).is_none());
        let a = plan.get("a").expect("a");
        assert_eq!((a.due, a.watch.url.path()), (t(10), "/elsewhere"));
        let (back, planned) = plan.replace(watch("b"), |_, _| false).expect("given back");
        assert!(planned && back.name == "b");
        let (back, planned) = plan.replace(watch("c"), |_, _| true).expect("new");
        assert!(!planned && back.name == "c" && plan.get("c").is_none());
        let none = HashSet::new();
        assert_eq!(plan.next_due(&none), Some(t(10)));
        assert_eq!(plan.len(), 2);
    }
}
