//! Golden images: names unique regardless of case and found in any case; a group holds at most
//! one image (the database's rule, whatever the caller checked); assignments are all or
//! nothing; deleting an image or its group frees the assignment; of two concurrent
//! assignments of one group to two images, exactly one wins.

use crate::store::golden_images::{AssignOutcome, GoldenImageRecord};
use crate::store::groups::GroupRecord;
use crate::store::*;

const SHA_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SHA_B: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

fn image(name: &str, now: i64) -> GoldenImageRecord {
    GoldenImageRecord {
        name: name.into(),
        description: Some("needs VPN".into()),
        apple_silicon_url: Some(format!("https://images.example/{name}-arm.zip")),
        apple_silicon_sha256: Some(SHA_A.into()),
        intel_url: None,
        intel_sha256: None,
        created_at: now,
        created_by: "alice".into(),
        updated_at: now,
        updated_by: "alice".into(),
    }
}

async fn group(s: &dyn Store, name: &str) {
    let g = GroupRecord {
        name: name.into(),
        description: None,
        filter: None,
        created_at: 1,
        updated_at: 1,
    };
    assert!(s.insert_group(&g).await.unwrap());
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

pub(super) async fn golden_image_names_are_unique_regardless_of_case(s: &dyn Store) {
    assert!(s.insert_golden_image(&image("Dev VM", 1)).await.unwrap());
    assert!(!s.insert_golden_image(&image("Dev VM", 2)).await.unwrap());
    assert!(!s.insert_golden_image(&image("DEV vm", 2)).await.unwrap());
    assert_eq!(
        s.golden_image("dev vm").await.unwrap(),
        Some(image("Dev VM", 1))
    );
    assert_eq!(s.golden_image("Other").await.unwrap(), None);

    // A change keeps the name and the creation.
    let changed = GoldenImageRecord {
        description: None,
        intel_url: Some("http://images.example/dev-x86.zip".into()),
        intel_sha256: Some(SHA_B.into()),
        updated_at: 5,
        updated_by: "bob".into(),
        ..image("Dev VM", 1)
    };
    assert!(s.update_golden_image(&changed).await.unwrap());
    assert!(!s.update_golden_image(&image("Nope", 5)).await.unwrap());
    assert!(
        s.insert_golden_image(&image("Accounting", 3))
            .await
            .unwrap()
    );
    let all = s.golden_images().await.unwrap();
    assert_eq!(
        all,
        [(image("Accounting", 3), vec![]), (changed.clone(), vec![])]
    );

    // The table refuses an image without any architecture, or a URL without its checksum.
    let bare = GoldenImageRecord {
        apple_silicon_url: None,
        apple_silicon_sha256: None,
        ..image("Bare", 6)
    };
    assert!(s.insert_golden_image(&bare).await.is_err());
    let half = GoldenImageRecord {
        apple_silicon_sha256: None,
        ..image("Half", 6)
    };
    assert!(s.insert_golden_image(&half).await.is_err());
}

pub(super) async fn a_group_holds_at_most_one_golden_image(s: &dyn Store) {
    group(s, "Engineering").await;
    group(s, "Design").await;
    group(s, "Sales").await;
    assert!(s.insert_golden_image(&image("Dev", 1)).await.unwrap());
    assert!(s.insert_golden_image(&image("Office", 1)).await.unwrap());

    assert_eq!(
        s.assign_golden_image("Dev", &names(&["Engineering", "Design"]), 10, "alice")
            .await
            .unwrap(),
        AssignOutcome::Assigned {
            added: names(&["Engineering", "Design"]),
            unchanged: vec![],
        }
    );
    // The same image again: no change.
    assert_eq!(
        s.assign_golden_image("Dev", &names(&["Design", "Sales"]), 11, "alice")
            .await
            .unwrap(),
        AssignOutcome::Assigned {
            added: names(&["Sales"]),
            unchanged: names(&["Design"]),
        }
    );
    // Another image on a taken group: refused whole, naming the holder.
    assert_eq!(
        s.assign_golden_image("Office", &names(&["Nobody's"]), 12, "bob")
            .await
            .unwrap(),
        AssignOutcome::NoGroup("Nobody's".into())
    );
    group(s, "Support").await;
    assert_eq!(
        s.assign_golden_image("Office", &names(&["Support", "Engineering"]), 12, "bob")
            .await
            .unwrap(),
        AssignOutcome::Taken {
            group: "Engineering".into(),
            holder: "Dev".into(),
        }
    );
    assert!(s.golden_image_groups("Office").await.unwrap().is_empty());
    assert_eq!(
        s.assign_golden_image("Gone", &names(&["Support"]), 12, "bob")
            .await
            .unwrap(),
        AssignOutcome::NoImage
    );

    // Refused whole: Support, named before the taken group, did not take Office either.
    assert_eq!(
        s.golden_image_groups("Dev").await.unwrap(),
        names(&["Design", "Engineering", "Sales"])
    );

    // Unassigning leaves groups holding nothing or another image as they are.
    assert_eq!(
        s.unassign_golden_image("Office", &names(&["Engineering", "Support"]))
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        s.unassign_golden_image("Dev", &names(&["Sales", "Support"]))
            .await
            .unwrap(),
        names(&["Sales"])
    );
    assert_eq!(
        s.golden_image_groups("Dev").await.unwrap(),
        names(&["Design", "Engineering"])
    );

    // Deleting a group takes its assignment with it.
    assert!(s.delete_group("Design").await.unwrap());
    assert_eq!(
        s.golden_image_groups("Dev").await.unwrap(),
        names(&["Engineering"])
    );

    // Deleting the image frees its groups for another.
    assert_eq!(
        s.delete_golden_image("Dev").await.unwrap(),
        Some(names(&["Engineering"]))
    );
    assert_eq!(s.delete_golden_image("Dev").await.unwrap(), None);
    assert_eq!(
        s.assign_golden_image("Office", &names(&["Engineering"]), 20, "bob")
            .await
            .unwrap(),
        AssignOutcome::Assigned {
            added: names(&["Engineering"]),
            unchanged: vec![],
        }
    );
    let all = s.golden_images().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1, names(&["Engineering"]));
}

pub(super) async fn concurrent_assignments_of_a_group_have_one_winner(s: &dyn Store) {
    for round in 0..8 {
        let g = format!("Team {round}");
        group(s, &g).await;
        let a = format!("A{round}");
        let b = format!("B{round}");
        assert!(s.insert_golden_image(&image(&a, 1)).await.unwrap());
        assert!(s.insert_golden_image(&image(&b, 1)).await.unwrap());
        let groups = vec![g.clone()];
        let (ra, rb) = tokio::join!(
            s.assign_golden_image(&a, &groups, 2, "alice"),
            s.assign_golden_image(&b, &groups, 2, "bob"),
        );
        let outcomes = [ra.unwrap(), rb.unwrap()];
        let winners: Vec<&AssignOutcome> = outcomes
            .iter()
            .filter(|o| matches!(o, AssignOutcome::Assigned { .. }))
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let holder = if s.golden_image_groups(&a).await.unwrap() == groups {
            &a
        } else {
            &b
        };
        assert!(
            outcomes.iter().any(|o| *o
                == AssignOutcome::Taken {
                    group: g.clone(),
                    holder: holder.clone(),
                }),
            "round {round}: {outcomes:?}"
        );
        let held = s.golden_image_groups(&a).await.unwrap().len()
            + s.golden_image_groups(&b).await.unwrap().len();
        assert_eq!(held, 1);
    }
}
