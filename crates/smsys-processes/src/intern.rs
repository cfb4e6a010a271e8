//! Values interned once and named by number, for the in-memory read models (trends, the CMDB
//! graph) that hold the same names (CIs, services, types) many times.

use std::collections::HashMap;
use std::hash::Hash;

/// The number of an interned value.
pub(crate) type Sym = u32;

/// Values interned once, numbered in the order first seen: each kept twice (in the map and
/// the list), however many times it is named.
#[derive(Debug, Clone)]
pub(crate) struct Symbols<T> {
    numbers: HashMap<T, Sym>,
    values: Vec<T>,
}

impl<T> Default for Symbols<T> {
    fn default() -> Self {
        Self {
            numbers: HashMap::new(),
            values: Vec::new(),
        }
    }
}

impl<T: Clone + Eq + Hash> Symbols<T> {
    /// The number of `value`, interning it the first time.
    pub(crate) fn intern(&mut self, value: &T) -> Sym {
        if let Some(n) = self.numbers.get(value) {
            return *n;
        }
        // More than 4 billion distinct values would not fit in memory anyway.
        let n = Sym::try_from(self.values.len()).unwrap_or(Sym::MAX);
        self.values.push(value.clone());
        self.numbers.insert(value.clone(), n);
        n
    }

    /// The number of `value`, if it was ever interned.
    pub(crate) fn find(&self, value: &T) -> Option<Sym> {
        self.numbers.get(value).copied()
    }

    /// The value of number `n`.
    pub(crate) fn get(&self, n: Sym) -> Option<&T> {
        self.values.get(n as usize)
    }

    /// How many values.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}
