//! The manifest's bulk writes keep each entry once: a row or object named
//! twice in one batch, or again by a later batch (two rows referencing one
//! file, a batch repeated), is added the first time only, keeps the place
//! in the deletion order it got then, and is counted once. On PostgreSQL the
//! insert skips what is there by an anti-join and the batch is de-duplicated
//! before it is sent (no `ON CONFLICT`), so this is what guards it. On both
//! backends.

use lethe::references::ObjectRef;
use lethe::store::Backend;
use lethe::store::manifest::{self, ManifestObject, ManifestRow};

use crate::app::TestApp;

fn row(table: &str, id: &str) -> ManifestRow {
    ManifestRow {
        table: table.to_owned(),
        row_id: id.to_owned(),
    }
}

fn object(key: &str, protected: bool, source_row: &str) -> ManifestObject {
    ManifestObject {
        object: ObjectRef {
            bucket: "bucket-a".to_owned(),
            key: key.to_owned(),
        },
        protected,
        source_table: "task".to_owned(),
        source_row: source_row.to_owned(),
        replica_of: None,
        container: false,
    }
}

async fn an_entry_named_again_is_added_once_in_its_first_place(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let loaded = app.load("member", 1, 1).await;
    let id = app.submit(&loaded.members[0].key).await;
    let store = app.store();

    // One batch naming a row and an object twice (the second time from
    // another row), and a protected object.
    let mut tx = store.begin().await.unwrap();
    let first = manifest::add(
        &mut tx,
        id,
        1,
        &[row("client", "1"), row("task", "7"), row("client", "1")],
        &[
            object("a.png", false, "7"),
            object("shared.png", true, "7"),
            object("a.png", false, "8"),
        ],
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (first.rows, first.objects_to_delete, first.objects_retained),
        (2, 1, 1)
    );

    // A later batch naming some of them again, and new ones.
    let mut tx = store.begin().await.unwrap();
    let second = manifest::add(
        &mut tx,
        id,
        2,
        &[row("task", "7"), row("task", "9")],
        &[
            object("b.png", false, "9"),
            object("a.png", false, "9"),
            object("shared.png", true, "9"),
        ],
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (
            second.rows,
            second.objects_to_delete,
            second.objects_retained
        ),
        (1, 1, 0)
    );

    // The objects to delete, in deletion order: a.png where it was first
    // named (from row 7), then b.png.
    let pending = manifest::objects_after(store, id, 0, 100).await.unwrap();
    let seen: Vec<(&str, Option<&str>)> = pending
        .iter()
        .map(|o| (o.key.as_str(), o.source_row.as_deref()))
        .collect();
    assert_eq!(seen, [("a.png", Some("7")), ("b.png", Some("9"))]);
    assert!(pending[0].seq < pending[1].seq);
    let first = manifest::rows_to_verify(store, id, i32::MIN)
        .await
        .unwrap()
        .expect("batch 1's rows");
    assert_eq!(first.batch_no, 1);
    assert_eq!(first.rows, [row("client", "1"), row("task", "7")]);
    assert!(!first.last, "batch 2 follows batch 1");
    let second = manifest::rows_to_verify(store, id, 1)
        .await
        .unwrap()
        .expect("batch 2's rows");
    assert_eq!(second.batch_no, 2);
    assert_eq!(second.rows, [row("task", "9")]);
    assert!(second.last, "nothing follows batch 2");
    assert!(
        manifest::rows_to_verify(store, id, 2)
            .await
            .unwrap()
            .is_none(),
        "no batch after the last"
    );
}

on_both_backends!(an_entry_named_again_is_added_once_in_its_first_place);
