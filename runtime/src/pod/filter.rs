//! `ListPodSandbox` filtering, in one place so the server and its tests agree with
//! containerd: an id filter matches the full id or a prefix of it (crictl passes
//! truncated ids), the state must be equal, and every selector label must be present with
//! the same value.

use std::collections::HashMap;

use crate::proto::v1::{PodSandboxFilter, PodSandboxState};

/// Whether a pod with this id, state and labels passes `filter` (`None` passes all).
pub fn matches_filter(
    filter: Option<&PodSandboxFilter>,
    id: &str,
    state: PodSandboxState,
    labels: &HashMap<String, String>,
) -> bool {
    let Some(f) = filter else { return true };
    if !f.id.is_empty() && !id.starts_with(&f.id) {
        return false;
    }
    if let Some(want) = &f.state {
        if want.state != state as i32 {
            return false;
        }
    }
    f.label_selector
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::PodSandboxStateValue;

    #[test]
    fn filters() {
        let labels: HashMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("tier".into(), "1".into()),
        ]
        .into();
        let ready = PodSandboxState::SandboxReady;
        assert!(matches_filter(None, "abc", ready, &labels));
        let mut f = PodSandboxFilter::default();
        assert!(matches_filter(Some(&f), "abc", ready, &labels));
        f.id = "ab".into();
        assert!(matches_filter(Some(&f), "abc", ready, &labels));
        assert!(!matches_filter(Some(&f), "xabc", ready, &labels));
        f.state = Some(PodSandboxStateValue {
            state: PodSandboxState::SandboxNotready as i32,
        });
        assert!(!matches_filter(Some(&f), "abc", ready, &labels));
        assert!(matches_filter(
            Some(&f),
            "abc",
            PodSandboxState::SandboxNotready,
            &labels
        ));
        f.state = None;
        f.label_selector.insert("app".into(), "web".into());
        assert!(matches_filter(Some(&f), "abc", ready, &labels));
        f.label_selector.insert("tier".into(), "2".into());
        assert!(!matches_filter(Some(&f), "abc", ready, &labels));
        f.label_selector.insert("tier".into(), "1".into());
        f.label_selector.insert("missing".into(), "".into());
        assert!(!matches_filter(Some(&f), "abc", ready, &labels));
    }
}
