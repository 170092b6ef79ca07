//! GTID positions, for choosing and checking a failover candidate.
//!
//! - MariaDB: a position is a list of `domain-server-sequence`, one per
//!   replication domain (`0-1-100,1-2-7`). A server holds another's
//!   transactions when, in every domain of the other, its sequence is at least
//!   as high.
//! - MySQL: a GTID set is `uuid:interval[:interval...]` per source
//!   (`3E11FA47-...:1-5:11-18`). One set contains another when every interval
//!   of the other is covered.
//!
//! Pure functions: no I/O, unit tested below.

use std::collections::BTreeMap;

use crate::config::Flavor;

/// A parsed position (either flavor), comparable by containment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GtidSet {
    /// MariaDB: domain -> highest sequence. MySQL: source uuid -> sorted,
    /// merged, inclusive intervals. (MariaDB positions are stored as the
    /// interval 1..=seq of their domain, so both compare the same way.)
    sets: BTreeMap<String, Vec<(u64, u64)>>,
}

impl GtidSet {
    /// Parse a position as the server reports it; `None` if malformed.
    pub fn parse(flavor: Flavor, text: &str) -> Option<GtidSet> {
        match flavor {
            Flavor::Mariadb => parse_mariadb(text),
            Flavor::Mysql => parse_mysql(text),
        }
    }

    /// Does `self` hold every transaction of `other`?
    pub fn contains(&self, other: &GtidSet) -> bool {
        other.sets.iter().all(|(src, want)| {
            let have = self.sets.get(src).map(Vec::as_slice).unwrap_or(&[]);
            want.iter().all(|&(a, b)| have.iter().any(|&(x, y)| x <= a && b <= y))
        })
    }

    /// The part of `self` that `other` lacks, for logs (errant transactions).
    pub fn missing_from(&self, other: &GtidSet) -> String {
        let mut out = Vec::new();
        for (src, ivs) in &self.sets {
            let have = other.sets.get(src).map(Vec::as_slice).unwrap_or(&[]);
            for &(a, b) in ivs {
                if !have.iter().any(|&(x, y)| x <= a && b <= y) {
                    let top = have.iter().map(|&(_, y)| y).max().unwrap_or(0);
                    let from = if top >= a && top < b { top + 1 } else { a };
                    out.push(format!("{src}:{from}-{b}"));
                }
            }
        }
        out.join(",")
    }

    /// Transactions counted (for ranking candidates that do not contain one
    /// another: more applied is better).
    pub fn count(&self) -> u64 {
        self.sets.values().flatten().map(|&(a, b)| b - a + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

fn parse_mariadb(text: &str) -> Option<GtidSet> {
    let mut sets = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = part.split('-');
        let (domain, server, seq) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        let _: u32 = domain.parse().ok()?;
        let _: u32 = server.parse().ok()?;
        let seq: u64 = seq.parse().ok()?;
        if seq > 0 {
            sets.insert(domain.to_owned(), vec![(1, seq)]);
        }
    }
    Some(GtidSet { sets })
}

fn parse_mysql(text: &str) -> Option<GtidSet> {
    let mut sets: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = part.split(':');
        let uuid = it.next()?.trim().to_ascii_lowercase();
        if uuid.len() != 36 {
            return None;
        }
        let ivs = sets.entry(uuid).or_default();
        for iv in it {
            let (a, b) = match iv.split_once('-') {
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                None => {
                    let n = iv.parse().ok()?;
                    (n, n)
                }
            };
            if a == 0 || b < a {
                return None;
            }
            ivs.push((a, b));
        }
    }
    for ivs in sets.values_mut() {
        ivs.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
        for &(a, b) in ivs.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *ivs = merged;
    }
    sets.retain(|_, v| !v.is_empty());
    Some(GtidSet { sets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> GtidSet {
        GtidSet::parse(Flavor::Mariadb, s).unwrap()
    }
    fn y(s: &str) -> GtidSet {
        GtidSet::parse(Flavor::Mysql, s).unwrap()
    }

    #[test]
    fn mariadb_positions_compare_per_domain() {
        assert!(m("0-1-100").contains(&m("0-1-99")));
        assert!(m("0-2-100").contains(&m("0-1-100")), "the server id does not matter, the sequence does");
        assert!(!m("0-1-99").contains(&m("0-1-100")));
        assert!(m("0-1-5,1-2-7").contains(&m("1-2-7")));
        assert!(!m("0-1-5").contains(&m("0-1-5,1-2-1")), "a domain it never saw");
        assert!(m("").contains(&m("")));
        assert!(m("0-1-3").contains(&m("")));
        assert_eq!(m("0-1-100,1-1-2").count(), 102);
        assert!(GtidSet::parse(Flavor::Mariadb, "0-1").is_none());
        assert!(GtidSet::parse(Flavor::Mariadb, "x-1-2").is_none());
    }

    #[test]
    fn mysql_sets_compare_by_interval() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let v = "4e11fa47-71ca-11e1-9e33-c80aa9429562";
        let a = y(&format!("{u}:1-5:7-10,{v}:1-3"));
        assert!(a.contains(&y(&format!("{u}:2-4"))));
        assert!(a.contains(&y(&format!("{u}:1-5:8"))));
        assert!(!a.contains(&y(&format!("{u}:1-6"))), "6 is missing");
        assert!(!a.contains(&y(&format!("{v}:4"))));
        assert_eq!(a.count(), 5 + 4 + 3);
        // Adjacent intervals merge, case does not matter.
        assert!(y(&format!("{}:1-3:4-6", u.to_uppercase())).contains(&y(&format!("{u}:1-6"))));
        assert!(GtidSet::parse(Flavor::Mysql, "nouuid:1-2").is_none());
        assert!(GtidSet::parse(Flavor::Mysql, &format!("{u}:5-2")).is_none());
    }

    #[test]
    fn missing_transactions_are_named() {
        assert_eq!(m("0-1-12").missing_from(&m("0-1-10")), "0:11-12");
        assert_eq!(m("0-1-10").missing_from(&m("0-1-12")), "");
        assert_eq!(m("0-1-10,5-3-2").missing_from(&m("0-1-10")), "5:1-2");
    }
}
