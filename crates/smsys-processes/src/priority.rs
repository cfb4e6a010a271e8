//! Priority from impact and urgency: a versioned, configurable matrix.

use serde::{Deserialize, Serialize};
use smsys_core::records::{Level, Priority};

/// Impact x urgency -> priority, versioned so records say which matrix set their priority.
///
/// ```
/// use smsys_core::records::Level;
/// use smsys_processes::PriorityMatrix;
/// let m = PriorityMatrix::reference();
/// assert_eq!(m.priority(Level::High, Level::High).get(), 1);
/// assert_eq!(m.priority(Level::Medium, Level::Low).get(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityMatrix {
    version: u32,
    /// `cells[impact rank - 1][urgency rank - 1]`.
    cells: [[Priority; 3]; 3],
}

impl PriorityMatrix {
    /// The reference matrix: `(1,1)->1 (1,2)->2 (2,1)->2 (1,3)->3 (2,2)->3 (3,1)->3 (2,3)->4
    /// (3,2)->4 (3,3)->5`, version 1.
    pub fn reference() -> Self {
        let p = |n| Priority::new(n).unwrap_or_else(|_| unreachable!("1 to 5"));
        Self {
            version: 1,
            cells: [[p(1), p(2), p(3)], [p(2), p(3), p(4)], [p(3), p(4), p(5)]],
        }
    }

    /// A custom matrix; `cells[impact][urgency]`, highest first.
    pub fn new(version: u32, cells: [[Priority; 3]; 3]) -> Self {
        Self { version, cells }
    }

    /// The matrix's version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The priority for an impact and an urgency.
    pub fn priority(&self, impact: Level, urgency: Level) -> Priority {
        self.cells[usize::from(impact.rank() - 1)][usize::from(urgency.rank() - 1)]
    }
}

impl Default for PriorityMatrix {
    fn default() -> Self {
        Self::reference()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_matrix_matches_the_domain_reference() {
        let m = PriorityMatrix::reference();
        let expected = [
            (1, 1, 1),
            (1, 2, 2),
            (2, 1, 2),
            (1, 3, 3),
            (2, 2, 3),
            (3, 1, 3),
            (2, 3, 4),
            (3, 2, 4),
            (3, 3, 5),
        ];
        for (i, u, p) in expected {
            let level = |r: usize| Level::ALL[r - 1];
            assert_eq!(
                m.priority(level(i), level(u)).get(),
                p,
                "impact {i}, urgency {u}"
            );
        }
    }
}
