//! Upcasters for stored events whose shape changed: the one list both the write side
//! (loading aggregates) and the log readers (projections, exports) apply, so they always
//! decode alike. Empty while every event is at its first version.

use cqrs_es::persist::EventUpcaster;

/// Every upcaster, oldest first.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    Vec::new()
}
