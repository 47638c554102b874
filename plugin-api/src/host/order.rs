//! The effective order of plugins.toml's entries: declaration order,
//! adjusted by each entry's `before` and `after` lists.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::host::PluginEntry;

/// Why the entries cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OrderError {
    /// Entry `index`'s `key` list names plugins no entry has.
    Unknown {
        index: usize,
        key: &'static str,
        names: Vec<String>,
    },
    /// The constraints go round: each name runs before the next, and the
    /// last is the first again.
    Cycle { names: Vec<String> },
}

/// The indices of `entries` in effective order: every `before`/`after`
/// holds, and otherwise declaration order decides. At each step the
/// earliest-declared entry that may run next (everything that must run
/// before it has) comes next; an entry with constraints waits for them,
/// the others keep their place. (A stable topological sort: Kahn's
/// algorithm with the ready entries ordered by declaration.)
pub(crate) fn effective_order(entries: &[PluginEntry]) -> Result<Vec<usize>, OrderError> {
    let index: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| (entry.name.as_str(), i))
        .collect();
    // successors[i]: the entries that must run after entry i.
    let mut successors: Vec<Vec<usize>> = vec![Vec::new(); entries.len()];
    for (i, entry) in entries.iter().enumerate() {
        for (key, names) in [("before", &entry.before), ("after", &entry.after)] {
            let unknown: Vec<String> = names
                .iter()
                .filter(|name| !index.contains_key(name.as_str()))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(OrderError::Unknown {
                    index: i,
                    key,
                    names: unknown,
                });
            }
            for name in names {
                let other = index[name.as_str()];
                match key {
                    "before" => successors[i].push(other),
                    _ => successors[other].push(i),
                }
            }
        }
    }

    let mut waiting_for = vec![0usize; entries.len()];
    for next in successors.iter().flatten() {
        waiting_for[*next] += 1;
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..entries.len())
        .filter(|&i| waiting_for[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(entries.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &next in &successors[i] {
            waiting_for[next] -= 1;
            if waiting_for[next] == 0 {
                ready.push(Reverse(next));
            }
        }
    }
    if order.len() == entries.len() {
        return Ok(order);
    }
    Err(OrderError::Cycle {
        names: find_cycle(&successors, &waiting_for)
            .into_iter()
            .map(|i| entries[i].name.clone())
            .collect(),
    })
}

/// A cycle among the entries still waiting (each waits for another
/// waiting one), as the path round it with its first entry repeated last.
fn find_cycle(successors: &[Vec<usize>], waiting_for: &[usize]) -> Vec<usize> {
    let stuck = |i: usize| waiting_for[i] > 0;
    let mut predecessor = vec![None; successors.len()];
    for (i, nexts) in successors.iter().enumerate() {
        for &next in nexts {
            if stuck(i) && stuck(next) && predecessor[next].is_none() {
                predecessor[next] = Some(i);
            }
        }
    }
    // Walk back from the first stuck entry until one repeats: every stuck
    // entry waits for a stuck predecessor, so the walk never ends early.
    let Some(start) = (0..successors.len()).find(|&i| stuck(i)) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut at = start;
    while let Some(previous) = predecessor[at] {
        if let Some(seen) = path.iter().position(|&p| p == previous) {
            let mut cycle: Vec<usize> = path[seen..].to_vec();
            // Walked backwards; told forwards, from its earliest entry.
            cycle.reverse();
            let earliest = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
            cycle.rotate_left(earliest);
            cycle.push(cycle[0]);
            return cycle;
        }
        path.push(previous);
        at = previous;
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, before: &[&str], after: &[&str]) -> PluginEntry {
        PluginEntry {
            name: name.to_string(),
            path: Some(format!("lib{name}.so").into()),
            library: None,
            enabled: true,
            required: false,
            before: before.iter().map(|s| s.to_string()).collect(),
            after: after.iter().map(|s| s.to_string()).collect(),
            on_fault: None,
            config: toml::Table::new(),
        }
    }

    fn names(entries: &[PluginEntry]) -> Result<Vec<&str>, OrderError> {
        effective_order(entries).map(|order| {
            order
                .into_iter()
                .map(|i| entries[i].name.as_str())
                .collect()
        })
    }

    #[test]
    fn without_constraints_the_order_is_the_declaration_order() {
        let entries = [
            entry("a", &[], &[]),
            entry("b", &[], &[]),
            entry("c", &[], &[]),
        ];
        assert_eq!(names(&entries), Ok(vec!["a", "b", "c"]));
    }

    #[test]
    fn an_entry_waits_for_what_must_run_before_it_and_the_rest_keeps_its_order() {
        // d before a; b after c. At each step the earliest-declared entry
        // that may run comes next: c (a and b wait), b, d, a, e.
        let entries = [
            entry("a", &[], &[]),
            entry("b", &[], &["c"]),
            entry("c", &[], &[]),
            entry("d", &["a"], &[]),
            entry("e", &[], &[]),
        ];
        assert_eq!(names(&entries), Ok(vec!["c", "b", "d", "a", "e"]));
        // Reversing the declaration of the constrained ones keeps them.
        let entries = [
            entry("d", &["a"], &[]),
            entry("a", &[], &[]),
            entry("c", &[], &[]),
            entry("b", &[], &["c"]),
        ];
        assert_eq!(names(&entries), Ok(vec!["d", "a", "c", "b"]));
    }

    #[test]
    fn a_constraint_that_already_holds_changes_nothing() {
        let entries = [
            entry("a", &["c"], &[]),
            entry("b", &[], &[]),
            entry("c", &[], &["b"]),
        ];
        assert_eq!(names(&entries), Ok(vec!["a", "b", "c"]));
    }

    #[test]
    fn unknown_names_are_reported_with_their_entry_and_key() {
        let entries = [entry("a", &[], &[]), entry("b", &[], &["a", "x", "y"])];
        assert_eq!(
            effective_order(&entries),
            Err(OrderError::Unknown {
                index: 1,
                key: "after",
                names: vec!["x".into(), "y".into()],
            })
        );
    }

    #[test]
    fn a_cycle_is_reported_as_the_path_round_it() {
        let entries = [
            entry("free", &[], &[]),
            entry("a", &["b"], &[]),
            entry("b", &[], &[]),
            entry("c", &["a"], &["b"]),
        ];
        // a before b, b before c, c before a.
        assert_eq!(
            effective_order(&entries),
            Err(OrderError::Cycle {
                names: vec!["a".into(), "b".into(), "c".into(), "a".into()],
            })
        );
        let itself = [entry("a", &["a"], &[])];
        assert_eq!(
            effective_order(&itself),
            Err(OrderError::Cycle {
                names: vec!["a".into(), "a".into()],
            })
        );
    }
}
