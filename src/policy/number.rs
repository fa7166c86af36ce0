//! Which trunk owns a number: the monitor and the complaints import route a number to its trunk.

/// Each trunk's numbers, normalized, with the name of the trunk that owns them.
pub fn number_owners(
    trunks: &[crate::config::TrunkConfig],
) -> std::collections::HashMap<String, String> {
    trunks
        .iter()
        .flat_map(|t| {
            t.numbers
                .iter()
                .filter_map(|n| crate::model::normalize_number(n))
                .map(|n| (n, t.name.clone()))
        })
        .collect()
}
