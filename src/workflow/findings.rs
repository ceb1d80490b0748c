//! What discovery found on a page of client rows: the manifest's rows and
//! objects, each once, in deletion order (a JSON manifest after the
//! objects it lists), and its anomalies. [`super::targets`] fills one per
//! feature and absorbs them in feature order; [`super::column_refs`] adds
//! the objects a column names.

use std::collections::{HashMap, HashSet};

use super::column_refs::Place;
use crate::references::ObjectRef;
use crate::store::manifest::{Anomaly, ManifestObject, ManifestRow};

/// Everything one page of client rows leads to.
#[derive(Debug, Default)]
pub struct Findings {
    pub rows: Vec<ManifestRow>,
    /// In deletion order: objects a container lists come before it.
    pub objects: Vec<ManifestObject>,
    pub anomalies: Vec<Anomaly>,
    pub(super) seen_objects: HashSet<ObjectRef>,
    pub(super) expanded: HashSet<ObjectRef>,
    /// Whether objects exist, asked ahead for the `+` ambiguity.
    pub(super) existence: HashMap<ObjectRef, bool>,
    /// JSON manifests fetched ahead (`ObjectStore::get_bounded`'s answer),
    /// until they are expanded.
    pub(super) fetched: HashMap<ObjectRef, Option<Option<Vec<u8>>>>,
    seen_rows: HashSet<(String, String)>,
}

/// A page's findings once complete: what its batch writes to the manifest,
/// without the look-ups that kept each entry once. Discovery works a page
/// ahead, so a page's findings wait for the page before it to commit; held
/// as [`Findings`], each entry was there twice (in its list and in its
/// look-up set), and the lists had grown by doubling.
#[derive(Debug, Default)]
pub struct Found {
    pub rows: Vec<ManifestRow>,
    /// In deletion order: objects a container lists come before it.
    pub objects: Vec<ManifestObject>,
    pub anomalies: Vec<Anomaly>,
}

impl Findings {
    /// The findings without their look-ups, each list no longer than it is.
    pub fn into_found(self) -> Found {
        let mut found = Found {
            rows: self.rows,
            objects: self.objects,
            anomalies: self.anomalies,
        };
        found.rows.shrink_to_fit();
        found.objects.shrink_to_fit();
        found.anomalies.shrink_to_fit();
        found
    }

    /// Adds another page's findings, each row and object once.
    pub fn absorb(&mut self, other: Findings) {
        for row in other.rows {
            self.push_row(&row.table, &row.row_id);
        }
        for object in other.objects {
            if object.container && object.replica_of.is_none() {
                // Deleted after what it lists, even when named earlier.
                self.push_container_entry(object);
            } else if self.seen_objects.insert(object.object.clone()) || object.replica_of.is_some()
            {
                self.objects.push(object);
            }
        }
        self.anomalies.extend(other.anomalies);
        self.expanded.extend(other.expanded);
    }

    pub(super) fn push_row(&mut self, table: &str, key: &str) {
        if self.seen_rows.insert((table.to_owned(), key.to_owned())) {
            self.rows.push(ManifestRow {
                table: table.to_owned(),
                row_id: key.to_owned(),
            });
        }
    }
}

impl Findings {
    /// Adds an object once; the first mention decides its place in the order.
    pub(super) fn push(
        &mut self,
        object: ObjectRef,
        protected: bool,
        container: bool,
        place: Place<'_>,
    ) {
        if self.seen_objects.insert(object.clone()) {
            self.objects.push(ManifestObject {
                object,
                protected,
                source_table: place.table.to_owned(),
                source_row: place.row_id.to_owned(),
                replica_of: None,
                container,
            });
        }
    }

    /// Adds a JSON manifest after the objects it lists: if it was already
    /// listed as a plain reference on this page, it moves to the end and
    /// becomes a container, so it is deleted after what it names.
    pub(super) fn push_container(&mut self, object: ObjectRef, place: Place<'_>) {
        if !self.move_to_end_as_container(&object) {
            self.push(object, false, true, place);
        }
    }

    /// [`Findings::push_container`] for an entry another page or feature
    /// found: the first mention keeps its place of origin.
    pub(super) fn push_container_entry(&mut self, entry: ManifestObject) {
        if !self.move_to_end_as_container(&entry.object) {
            self.seen_objects.insert(entry.object.clone());
            self.objects.push(entry);
        }
    }

    /// Moves an earlier mention of `object` to the end as a container;
    /// false when there is none.
    fn move_to_end_as_container(&mut self, object: &ObjectRef) -> bool {
        let Some(at) = self
            .objects
            .iter()
            .position(|o| &o.object == object && o.replica_of.is_none())
        else {
            return false;
        };
        let mut earlier = self.objects.remove(at);
        earlier.container = true;
        self.objects.push(earlier);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, container: bool, row: &str) -> ManifestObject {
        ManifestObject {
            object: ObjectRef {
                bucket: "b".into(),
                key: key.into(),
            },
            protected: false,
            source_table: "t".into(),
            source_row: row.into(),
            replica_of: None,
            container,
        }
    }

    fn keys(findings: &Findings) -> Vec<(&str, bool, &str)> {
        findings
            .objects
            .iter()
            .map(|o| (o.object.key.as_str(), o.container, o.source_row.as_str()))
            .collect()
    }

    /// Features are followed side by side and their findings absorbed in
    /// feature order: a JSON manifest one feature names plainly and a later
    /// one expands is still deleted after what it lists, and an object
    /// both name is listed once, where it was first named.
    #[test]
    fn absorbing_keeps_containers_after_what_they_list_and_first_mentions_first() {
        let mut page = Findings::default();
        let found = |objects: Vec<ManifestObject>| Findings {
            objects,
            ..Findings::default()
        };
        let first = found(vec![
            entry("manifest.json", false, "1"),
            entry("a.png", false, "1"),
        ]);
        let second = found(vec![
            entry("a.png", false, "2"),
            entry("listed.png", false, "2"),
            entry("manifest.json", true, "2"),
        ]);
        page.absorb(first);
        page.absorb(second);
        assert_eq!(
            keys(&page),
            [
                ("a.png", false, "1"),
                ("listed.png", false, "2"),
                ("manifest.json", true, "1"),
            ]
        );
        // A container absorbed again (a later page) stays once, at the end.
        page.absorb(found(vec![entry("manifest.json", true, "3")]));
        assert_eq!(page.objects.len(), 3);
        assert_eq!(keys(&page)[2], ("manifest.json", true, "1"));
    }
}
