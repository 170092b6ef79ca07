//! What the health checker believes about one backend, with hysteresis so a
//! flapping server does not bounce in and out of rotation. Pure: fed one probe
//! result at a time, it says which transitions that result caused.

use super::probe::Unfit;

/// A transition caused by one probe result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `down_after` consecutive successful probes (or the first probe succeeded).
    Up,
    /// `down_after` consecutive failed probes (or the first probe failed).
    Down,
    /// Back in the read rotation: `down_after` consecutive fit probes.
    Fit,
    /// Out of the read rotation, at once: one unfit probe is enough.
    Unfit(Unfit),
}

/// Up/down and fit-for-reads of one backend.
///
/// - Down after `down_after` consecutive failed probes, up again only after as
///   many consecutive successes.
/// - Fit for reads (as a replica) needs the server up and its replication fit
///   (see [`super::ProbeReport::fit_for_reads`]). One unfit probe takes it out
///   of the read rotation at once (stale reads are worse than a busier
///   primary); it returns after `down_after` consecutive fit probes. A failed
///   probe alone does not change fitness: the up/down hysteresis decides.
/// - The very first probe sets both directly: there is no history to protect.
#[derive(Debug, Clone, Default)]
pub struct HealthState {
    probed: bool,
    up: bool,
    fit: bool,
    fails: u32,
    oks: u32,
    fit_streak: u32,
}

impl HealthState {
    /// At least one probe result was fed.
    pub fn probed(&self) -> bool {
        self.probed
    }

    pub fn up(&self) -> bool {
        self.up
    }

    pub fn fit(&self) -> bool {
        self.up && self.fit
    }

    /// Feed one probe result: whether the server answered, and whether it is
    /// fit for reads. Returns the transitions, in order.
    pub fn observe(&mut self, reachable: bool, fitness: Result<(), Unfit>, down_after: u32) -> Vec<Change> {
        let threshold = down_after.max(1);
        let first = !self.probed;
        self.probed = true;
        let mut changes = Vec::new();
        if !reachable {
            self.oks = 0;
            self.fails = self.fails.saturating_add(1);
            if first || (self.up && self.fails >= threshold) {
                self.up = false;
                self.fit = false;
                self.fit_streak = 0;
                changes.push(Change::Down);
            }
            return changes;
        }
        self.fails = 0;
        self.oks = self.oks.saturating_add(1);
        self.fit_streak = if fitness.is_ok() { self.fit_streak.saturating_add(1) } else { 0 };
        if !self.up && (first || self.oks >= threshold) {
            self.up = true;
            changes.push(Change::Up);
        }
        if !self.up {
            // Answering again, but not trusted yet: fitness waits for up.
            return changes;
        }
        match fitness {
            Ok(()) if !self.fit && (first || self.fit_streak >= threshold) => {
                self.fit = true;
                changes.push(Change::Fit);
            }
            Err(why) if self.fit || first => {
                self.fit = false;
                changes.push(Change::Unfit(why));
            }
            _ => {}
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: u32 = 3;

    fn feed(s: &mut HealthState, reachable: bool, fit: bool) -> Vec<Change> {
        s.observe(reachable, if fit { Ok(()) } else { Err(Unfit::SqlStopped) }, N)
    }

    fn started_up_and_fit() -> HealthState {
        let mut s = HealthState::default();
        assert_eq!(feed(&mut s, true, true), [Change::Up, Change::Fit]);
        s
    }

    #[test]
    fn first_probe_decides_at_once() {
        let mut s = HealthState::default();
        assert_eq!(feed(&mut s, false, false), [Change::Down]);
        assert!(!s.up() && !s.fit());
        let mut s = HealthState::default();
        assert_eq!(feed(&mut s, true, false), [Change::Up, Change::Unfit(Unfit::SqlStopped)]);
        assert!(s.up() && !s.fit());
        started_up_and_fit();
    }

    #[test]
    fn down_after_n_consecutive_failures_only() {
        let mut s = started_up_and_fit();
        assert!(feed(&mut s, false, false).is_empty());
        assert!(feed(&mut s, false, false).is_empty());
        assert!(feed(&mut s, true, true).is_empty(), "a success resets the count");
        assert!(feed(&mut s, false, false).is_empty());
        assert!(feed(&mut s, false, false).is_empty());
        assert!(s.up() && s.fit(), "two failures do not take it out");
        assert_eq!(feed(&mut s, false, false), [Change::Down]);
        assert!(!s.up() && !s.fit());
    }

    #[test]
    fn a_flapping_backend_does_not_bounce_back() {
        let mut s = started_up_and_fit();
        for _ in 0..N {
            feed(&mut s, false, false);
        }
        assert!(!s.up());
        // Down, up once, down, up twice, down: never N successes in a row.
        for pattern in [&[true, false][..], &[true, true, false], &[true, false, true, false]] {
            for &ok in pattern {
                assert!(feed(&mut s, ok, ok).is_empty(), "no transition while flapping");
                assert!(!s.up() && !s.fit(), "stays out of rotation while flapping");
            }
        }
        assert!(feed(&mut s, true, true).is_empty());
        assert!(feed(&mut s, true, true).is_empty());
        assert_eq!(feed(&mut s, true, true), [Change::Up, Change::Fit], "back after N successes");
        assert!(s.up() && s.fit());
    }

    #[test]
    fn unfit_at_once_fit_again_after_n_fit_probes() {
        let mut s = started_up_and_fit();
        assert_eq!(feed(&mut s, true, false), [Change::Unfit(Unfit::SqlStopped)]);
        assert!(s.up() && !s.fit());
        assert!(feed(&mut s, true, true).is_empty());
        assert!(feed(&mut s, true, false).is_empty(), "still unfit: logged once");
        assert!(feed(&mut s, true, true).is_empty());
        assert!(feed(&mut s, true, true).is_empty());
        assert_eq!(feed(&mut s, true, true), [Change::Fit]);
        assert!(s.fit());
    }

    #[test]
    fn a_failed_probe_alone_keeps_fitness() {
        let mut s = started_up_and_fit();
        assert!(feed(&mut s, false, false).is_empty());
        assert!(s.fit(), "one failed probe: the up/down hysteresis decides, not fitness");
        assert!(feed(&mut s, true, true).is_empty());
        assert!(s.fit());
    }

    #[test]
    fn coming_back_up_fit_returns_with_up() {
        let mut s = started_up_and_fit();
        for _ in 0..N {
            feed(&mut s, false, false);
        }
        assert!(feed(&mut s, true, true).is_empty());
        assert!(feed(&mut s, true, true).is_empty());
        assert_eq!(feed(&mut s, true, true), [Change::Up, Change::Fit]);
        // Up but lagging: up without fit.
        for _ in 0..N {
            feed(&mut s, false, false);
        }
        feed(&mut s, true, false);
        feed(&mut s, true, false);
        assert_eq!(feed(&mut s, true, false), [Change::Up]);
        assert!(s.up() && !s.fit());
    }
}
