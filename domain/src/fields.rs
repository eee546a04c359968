//! Lead fields as the upstream CRM sends them: the one type the lead aggregate stores and
//! the routing policy reads (so neither module depends on the other for it).

use std::collections::BTreeMap;

/// Lead fields as sent by the upstream CRM, by field name.
pub type LeadFields = BTreeMap<String, serde_json::Value>;
