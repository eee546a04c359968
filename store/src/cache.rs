//! This process's cache of aggregate states: typed (one map per aggregate type, reached by
//! the type itself) and bounded (at most [`PER_TYPE`] states per type; the state cached
//! longest ago goes first). A cached state is only a starting point: a cached load still
//! reads every event committed after it, so an evicted or stale entry costs a longer read,
//! never a wrong state.

use std::any::{Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Most states kept per aggregate type.
pub const PER_TYPE: usize = 20_000;

/// Cached states of every aggregate type.
#[derive(Default)]
pub(crate) struct Cache {
    by_type: Mutex<HashMap<TypeId, Box<dyn Any + Send>>>,
}

/// The cached states of one aggregate type, by id, with the order they were first cached.
struct Bounded<A> {
    states: HashMap<String, (A, usize)>,
    order: VecDeque<String>,
}

impl Cache {
    /// The cached state of `id` and its sequence.
    pub(crate) fn get<A: Clone + Send + 'static>(&self, id: &str) -> Option<(A, usize)> {
        let by_type = self.by_type.lock().expect("cache lock");
        let bounded = by_type
            .get(&TypeId::of::<A>())?
            .downcast_ref::<Bounded<A>>()?;
        bounded.states.get(id).cloned()
    }

    /// Keep `(state, sequence, id)` for each of `states`.
    pub(crate) fn put<A: Send + 'static>(
        &self,
        states: impl IntoIterator<Item = (A, usize, String)>,
    ) {
        let mut by_type = self.by_type.lock().expect("cache lock");
        let entry = by_type.entry(TypeId::of::<A>()).or_insert_with(|| {
            Box::new(Bounded::<A> {
                states: HashMap::new(),
                order: VecDeque::new(),
            })
        });
        let bounded = entry
            .downcast_mut::<Bounded<A>>()
            .expect("one map type per aggregate type");
        for (state, sequence, id) in states {
            if bounded
                .states
                .insert(id.clone(), (state, sequence))
                .is_none()
            {
                bounded.order.push_back(id);
            }
            while bounded.order.len() > PER_TYPE {
                if let Some(oldest) = bounded.order.pop_front() {
                    bounded.states.remove(&oldest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cache, PER_TYPE};

    #[test]
    fn keeps_each_type_apart_and_at_most_its_bound() {
        let cache = Cache::default();
        cache.put((0..PER_TYPE + 5).map(|i| (i as u64, i, i.to_string())));
        cache.put([(String::from("text"), 3, "0".to_string())]);
        assert_eq!(cache.get::<u64>("0"), None, "the oldest went first");
        assert_eq!(cache.get::<u64>("5"), Some((5, 5)));
        assert_eq!(
            cache.get::<u64>(&(PER_TYPE + 4).to_string()),
            Some(((PER_TYPE + 4) as u64, PER_TYPE + 4))
        );
        assert_eq!(cache.get::<String>("0"), Some(("text".into(), 3)));
        cache.put([(7u64, 9, "5".to_string())]);
        assert_eq!(
            cache.get::<u64>("5"),
            Some((7, 9)),
            "a newer state replaces the old"
        );
    }
}
