//! Domain rules every layer and every backend applies the same way, written once.

use crate::ConfigKey;

/// Config types Nacos knows; anything else is stored (and imported) as `text`.
pub const CONFIG_TYPES: &[&str] = &["text", "json", "xml", "yaml", "html", "properties", "toml"];

/// A namespace as stored: `public`, `null` and blank all mean the default namespace `""`.
pub fn normalise_namespace(raw: &str) -> &str {
    let raw = raw.trim();
    if raw.is_empty() || raw == "public" || raw == "null" {
        ""
    } else {
        raw
    }
}

/// An update's value for a field: the new one when the update sets it, else the stored one.
pub fn updated_field(new: &Option<String>, stored: &str) -> String {
    new.clone().unwrap_or_else(|| stored.to_string())
}

/// Tags as stored: trimmed, without blanks and repeats, in the order given.
pub fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    out
}

impl ConfigKey {
    /// The key as error messages name it.
    pub fn describe(&self) -> String {
        format!(
            "(namespace {:?}, group {:?}, dataId {:?})",
            self.namespace, self.group, self.data_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(normalise_namespace(" public "), "");
        assert_eq!(normalise_namespace("null"), "");
        assert_eq!(normalise_namespace("dev"), "dev");
        assert_eq!(updated_field(&None, "old"), "old");
        assert_eq!(updated_field(&Some("new".into()), "old"), "new");
        let tags = vec![" a".to_string(), "b".into(), "a".into(), " ".into()];
        assert_eq!(clean_tags(&tags), vec!["a", "b"]);
        assert_eq!(
            ConfigKey::new("", "G", "d").describe(),
            r#"(namespace "", group "G", dataId "d")"#
        );
    }
}
