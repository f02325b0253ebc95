//! What people call the watches and tags: the titles a config gives them,
//! falling back to the names. The name stays the stable key (in the store,
//! in subscriptions, in URLs); the title is only ever shown.

use std::collections::BTreeMap;

/// Human titles of watches and tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Titles {
    watches: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
}

impl Titles {
    /// Titles from `(name, title)` pairs of watches and of tags.
    pub fn new(
        watches: impl IntoIterator<Item = (String, String)>,
        tags: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Self {
            watches: watches.into_iter().collect(),
            tags: tags.into_iter().collect(),
        }
    }

    /// A watch's title, or its name when it has none.
    pub fn watch<'a>(&'a self, name: &'a str) -> &'a str {
        self.watches.get(name).map_or(name, String::as_str)
    }

    /// A tag's title, or the tag itself when it has none.
    pub fn tag<'a>(&'a self, tag: &'a str) -> &'a str {
        self.tags.get(tag).map_or(tag, String::as_str)
    }
}

/// A heading as a reader sees it inside one pair of quotes: the quotation
/// marks a page put around its own heading are dropped, so that
/// `In "…"` never shows them twice.
pub fn section_label(heading: &str) -> String {
    const QUOTES: [char; 8] = ['"', '\'', '“', '”', '‘', '’', '«', '»'];
    let words = heading.split_whitespace().collect::<Vec<_>>().join(" ");
    words
        .trim_matches(|c: char| QUOTES.contains(&c) || c.is_whitespace())
        .to_owned()
}

/// Whether a heading's text reads as an image's label rather than a
/// section's name ("… Partnership logo", "Photo of the board"): such a
/// heading never names the section the blocks under it are in.
pub fn is_image_label(heading: &str) -> bool {
    let text = heading.trim().to_lowercase();
    let text = text.trim_end_matches(['.', ':']);
    text == "logo"
        || text.ends_with(" logo")
        || text.ends_with(" logo image")
        || [
            "image of ",
            "photo of ",
            "picture of ",
            "image: ",
            "photo: ",
        ]
        .iter()
        .any(|start| text.starts_with(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_fall_back_to_names() {
        let titles = Titles::new(
            [("wnec".to_owned(), "West, North and East Cumbria".to_owned())],
            [("lsc".to_owned(), "Lancashire and South Cumbria".to_owned())],
        );
        assert_eq!(titles.watch("wnec"), "West, North and East Cumbria");
        assert_eq!(titles.watch("other"), "other");
        assert_eq!(titles.tag("lsc"), "Lancashire and South Cumbria");
        assert_eq!(titles.tag("stp"), "stp");
    }

    #[test]
    fn image_labels_are_not_section_names() {
        assert!(is_image_label(
            "Lancashire and South Cumbria Health and Care Partnership logo"
        ));
        assert!(is_image_label("Photo of the board"));
        assert!(!is_image_label("Our logo competition winners"));
        assert!(!is_image_label("Places"));
    }

    #[test]
    fn quoted_headings_lose_their_own_quotes() {
        assert_eq!(
            section_label("“West, North and East Cumbria Health and Care Partnership”"),
            "West, North and East Cumbria Health and Care Partnership"
        );
        assert_eq!(section_label("  \"Places\"\n"), "Places");
        assert_eq!(section_label("Our members"), "Our members");
    }
}
