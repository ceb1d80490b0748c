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

/// Deletion and verification read the manifest a page at a time: the first
/// `limit` objects to delete after the cursor, in `seq` order. The read goes
/// a window of `seq` at a time, so this checks a page still fills across
/// what a window can come back without: a run of protected objects longer
/// than a page, objects S3 refused for good, and `seq` left unused by an
/// entry a batch named twice.
async fn pages_of_objects_fill_across_gaps_in_the_order(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let loaded = app.load("member", 1, 1).await;
    let id = app.submit(&loaded.members[0].key).await;
    let store = app.store();

    let key = |i: usize| format!("k{i:02}.png");
    // 30 objects; 4-13 protected (longer than a page of 4), and the second
    // batch names k03 again, which leaves a `seq` unused.
    let first_batch: Vec<ManifestObject> = (0..15)
        .map(|i| object(&key(i), (4..=13).contains(&i), "1"))
        .collect();
    let second_batch: Vec<ManifestObject> = std::iter::once(object(&key(3), false, "2"))
        .chain((15..30).map(|i| object(&key(i), false, "3")))
        .collect();
    for (batch_no, objects) in [(1, &first_batch), (2, &second_batch)] {
        let mut tx = store.begin().await.unwrap();
        manifest::add(&mut tx, id, batch_no, &[], objects, &[])
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    // S3 refused k20 and k21 for good: retained, left out of the pages.
    let all = manifest::objects_after(store, id, 0, 100).await.unwrap();
    assert_eq!(all.len(), 20, "30 objects less 10 protected");
    let refused: Vec<manifest::ObjectEnd> = all
        .iter()
        .filter(|o| o.key == key(20) || o.key == key(21))
        .map(|o| manifest::ObjectEnd {
            seq: o.seq,
            outcome: "locked",
            versions: None,
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    manifest::record_outcomes(&mut tx, id, &refused)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let expected: Vec<String> = (0..30)
        .filter(|i| !(4..=13).contains(i) && *i != 20 && *i != 21)
        .map(key)
        .collect();
    let mut read = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = manifest::objects_after(store, id, after_seq, 4)
            .await
            .unwrap();
        assert!(
            page.windows(2).all(|pair| pair[0].seq < pair[1].seq),
            "a page is in `seq` order"
        );
        let full = page.len() == 4;
        read.extend(page.iter().map(|o| o.key.clone()));
        match page.last() {
            Some(last) if full => after_seq = last.seq,
            _ => break,
        }
    }
    assert_eq!(
        read, expected,
        "every page but the last is full, and the pages hold each object to delete once, in order"
    );
}

on_both_backends!(
    an_entry_named_again_is_added_once_in_its_first_place,
    pages_of_objects_fill_across_gaps_in_the_order
);
