//! `ListPodSandbox` / `ListContainers` filters: by id (or unique id prefix, as crictl
//! sends), state, pod, and label selector (every key must match exactly).

use std::collections::{BTreeMap, HashMap};

/// True if every selector entry is in `labels` with the same value.
pub fn labels_match(selector: &HashMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

/// True if `id` is selected by the filter id `wanted` ("" selects all; a prefix selects).
pub fn id_matches(wanted: &str, id: &str) -> bool {
    wanted.is_empty() || id.starts_with(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [
            ("app".to_owned(), "web".to_owned()),
            ("tier".to_owned(), "a".to_owned()),
        ]
        .into();
        assert!(labels_match(&HashMap::new(), &labels));
        assert!(labels_match(
            &[("app".to_owned(), "web".to_owned())].into(),
            &labels
        ));
        assert!(!labels_match(
            &[("app".to_owned(), "db".to_owned())].into(),
            &labels
        ));
        assert!(!labels_match(
            &[("x".to_owned(), "web".to_owned())].into(),
            &labels
        ));
        assert!(id_matches("", "abc"));
        assert!(id_matches("ab", "abc"));
        assert!(!id_matches("b", "abc"));
    }
}
