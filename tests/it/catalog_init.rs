//! `lethe catalog init` on both example services: the draft it writes
//! passes `lethe catalog check` once the edits its comments ask for are
//! made (pinned here: how many `TODO(lethe)` there are, and what the edits
//! are), and an erasure with the edited draft deletes exactly the member's
//! objects, as one with the hand-written catalog does.

use std::collections::BTreeSet;
use std::path::Path;

use lethe::Engine;
use lethe::example::ExampleSpec;
use lethe::references::ObjectRef;
use lethe::store::Backend;

use crate::app::{ExampleService, TestApp, run_worker_once};

/// Drafts a catalog of the app's database into `dir`.
async fn draft(app: &TestApp, dir: &Path) -> lethe::catalog::init::Draft {
    let draft = app.engine.draft_catalog(200).await.expect("a draft");
    draft.write(dir, true).expect("the draft is written");
    draft
}

fn show(dir: &Path) -> String {
    let mut text = String::new();
    for path in walk(dir) {
        text.push_str(&format!(
            "==> {}\n{}\n",
            path.display(),
            std::fs::read_to_string(&path).unwrap()
        ));
    }
    text
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// An engine on the app's database and S3 with another catalog.
fn engine_with_catalog(app: &TestApp, dir: &Path) -> Engine {
    let mut config = app.config.clone();
    config.catalog = dir.to_owned();
    Engine::with_store(app.store().clone(), config).with_objects(app.objects.clone())
}

/// Checks the catalog in `dir`, then erases `member` with it: the objects
/// deleted.
async fn check_and_erase(app: &TestApp, dir: &Path, member: &str) -> BTreeSet<ObjectRef> {
    let engine = engine_with_catalog(app, dir);
    let report = engine.check_catalog().await.unwrap();
    assert!(report.safe, "{report}\n{}", show(dir));
    let id = engine.submit(member, None).await.unwrap().id;
    run_worker_once(&engine).await;
    let status = engine.status(id).await.unwrap();
    assert_eq!(
        status.record.state,
        lethe::State::Done,
        "{:?}",
        status.record.last_error
    );
    crate::atelier::deleted(app)
}

async fn the_seed_shaped_service_drafts_a_catalog_that_erases_exactly(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let loaded = app
        .load_spec(ExampleSpec {
            members: 4,
            requests_per_member: 40,
            member_prefix: "init".into(),
            every_feature: true,
        })
        .await;
    let dir = tempfile::tempdir().unwrap();
    let draft = draft(&app, dir.path()).await;
    assert_eq!(draft.clients, 3);
    assert_eq!(draft.features.len(), 19, "{:?}", draft.features);
    assert_eq!(draft.todos, 0, "{}", show(dir.path()));
    let main = std::fs::read_to_string(dir.path().join("catalog.toml")).unwrap();
    for shared in [
        "shared/styles/watercolour.png",
        "presets/default-avatar.png",
    ] {
        assert!(
            main.contains(shared),
            "the draft names the shared {shared}:\n{main}"
        );
    }
    // The edit its CHECK asks for: the shared objects are protected.
    std::fs::write(
        dir.path().join("catalog.toml"),
        main.replace(
            "[[clients]]",
            "[[storage.protected]]\nbucket = \"lethe-example-inputs\"\nprefixes = [\"shared/\"]\nkeys = [\"presets/default-avatar.png\"]\n\n[[clients]]",
        ),
    )
    .unwrap();
    let member = &loaded.members[1];
    let deleted = check_and_erase(&app, dir.path(), &member.key).await;
    let expected: BTreeSet<ObjectRef> = member.objects.iter().cloned().collect();
    assert_eq!(deleted, expected, "{}", show(dir.path()));
}

async fn the_atelier_service_drafts_a_catalog_that_erases_exactly(backend: Backend) {
    let app = TestApp::start_service(backend, ExampleService::Atelier, |_| {}).await;
    let loaded = crate::atelier::load(&app, 4, 9).await;
    let dir = tempfile::tempdir().unwrap();
    let draft = draft(&app, dir.path()).await;
    assert_eq!(draft.clients, 2);
    assert_eq!(draft.features.len(), 3, "{:?}", draft.features);
    assert_eq!(draft.todos, 0, "{}", show(dir.path()));
    let main = std::fs::read_to_string(dir.path().join("catalog.toml")).unwrap();
    assert!(main.contains("stock/paper texture.png"), "{main}");
    std::fs::write(
        dir.path().join("catalog.toml"),
        main.replace(
            "[[clients]]",
            "[[storage.protected]]\nbucket = \"atelier-uploads\"\nprefixes = [\"stock/\"]\n\n[[clients]]",
        ),
    )
    .unwrap();
    let member = &loaded.members[2];
    let deleted = check_and_erase(&app, dir.path(), &member.key).await;
    let expected: BTreeSet<ObjectRef> = member.objects.iter().cloned().collect();
    assert_eq!(deleted, expected, "{}", show(dir.path()));
}

on_both_backends!(
    the_seed_shaped_service_drafts_a_catalog_that_erases_exactly,
    the_atelier_service_drafts_a_catalog_that_erases_exactly,
);
