use super::*;

#[test]
fn api_resources_name_kubedbs_kinds() {
    let rd = DatabaseKind::Redis.database_resource();
    assert_eq!(
        (rd.api_version.as_str(), rd.plural.as_str()),
        ("kubedb.com/v1", "redises")
    );
    let zk = DatabaseKind::ZooKeeper.ops_resource();
    assert_eq!(
        (zk.api_version.as_str(), zk.kind.as_str(), zk.plural.as_str()),
        (
            "ops.kubedb.com/v1alpha1",
            "ZooKeeperOpsRequest",
            "zookeeperopsrequests"
        )
    );
    for w in [WorkloadKind::PetSet, WorkloadKind::StatefulSet] {
        let ar = w.resource();
        assert_eq!(
            (ar.api_version.as_str(), ar.plural.as_str()),
            (w.api_version(), w.plural())
        );
    }
}

#[test]
fn selects_agrees_with_the_selector_labels() {
    for kind in [DatabaseKind::Redis, DatabaseKind::ZooKeeper] {
        let want = kind.selector_labels("rd");
        let by_map = |l: &BTreeMap<String, String>| want.iter().all(|(k, v)| l.get(k) == Some(v));
        let mut cases = vec![want.clone(), BTreeMap::new()];
        for k in want.keys() {
            let mut missing = want.clone();
            missing.remove(k);
            cases.push(missing);
            for odd in ["", "rd-0", "x", "redises.kubedb.comx", "redises", "kubedb.com"] {
                let mut changed = want.clone();
                changed.insert(k.clone(), odd.into());
                cases.push(changed);
            }
        }
        let mut extra = want.clone();
        extra.insert("app.kubernetes.io/component".into(), "database".into());
        cases.push(extra);
        for other in [DatabaseKind::Redis, DatabaseKind::ZooKeeper] {
            cases.push(other.selector_labels("rd"));
            cases.push(other.selector_labels("rd2"));
        }
        for labels in &cases {
            assert_eq!(kind.selects("rd", labels), by_map(labels), "{kind:?} {labels:?}");
        }
        assert!(kind.selects("rd", &want));
    }
}

#[test]
fn offshoot_selector_is_the_selector_with_any_instance() {
    for kind in [DatabaseKind::Redis, DatabaseKind::ZooKeeper] {
        let terms: Vec<String> = kind.offshoot_selector().split(',').map(str::to_owned).collect();
        let mut want: Vec<String> = kind
            .selector_labels("rd")
            .into_iter()
            .map(|(k, v)| {
                if k == "app.kubernetes.io/instance" {
                    k
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        want.sort();
        let mut got = terms.clone();
        got.sort();
        assert_eq!(got, want, "{kind:?}");
    }
}

#[test]
fn redis_cluster_has_a_workload_per_shard() {
    let w = workloads(
        DatabaseKind::Redis,
        "sample-redis",
        &Topology::RedisCluster {
            shards: 3,
            replicas: 2,
        },
    )
    .unwrap();
    let names: Vec<_> = w.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sample-redis-shard0",
            "sample-redis-shard1",
            "sample-redis-shard2"
        ]
    );
    assert_eq!(
        w[1].pvcs(),
        ["data-sample-redis-shard1-0", "data-sample-redis-shard1-1"]
    );
    assert_eq!(w[0].kind, WorkloadKind::PetSet);
}

#[test]
fn redis_standalone_and_zookeeper_names() {
    let rd = workloads(DatabaseKind::Redis, "rd", &Topology::RedisSingle { replicas: 1 }).unwrap();
    assert_eq!(rd[0].pvcs(), ["data-rd-0"]);
    let zk = workloads(
        DatabaseKind::ZooKeeper,
        "zk-quickstart",
        &Topology::ZooKeeper { replicas: 3 },
    )
    .unwrap();
    assert_eq!(zk.len(), 1);
    assert_eq!(zk[0].kind, WorkloadKind::PetSet);
    assert_eq!(zk[0].claim_template, "zk-quickstart-data");
    assert_eq!(zk[0].pvcs()[2], "zk-quickstart-data-zk-quickstart-2");
}

#[test]
fn topology_defaults_follow_kubedb() {
    let mut rd = Redis::new("rd", Default::default());
    assert_eq!(Topology::of_redis(&rd), Topology::RedisSingle { replicas: 1 });
    rd.spec.mode = Some("Cluster".into());
    assert_eq!(
        Topology::of_redis(&rd),
        Topology::RedisCluster {
            shards: 3,
            replicas: 2
        }
    );
    rd.spec.mode = Some("Sentinel".into());
    rd.spec.replicas = Some(3);
    assert_eq!(Topology::of_redis(&rd), Topology::RedisSingle { replicas: 3 });
}

#[test]
fn selectors() {
    assert_eq!(
        DatabaseKind::ZooKeeper.selector("zk"),
        "app.kubernetes.io/instance=zk,app.kubernetes.io/managed-by=kubedb.com,app.kubernetes.io/name=zookeepers.kubedb.com"
    );
    assert_eq!(
        DatabaseKind::from_ops_kind("RedisOpsRequest"),
        Some(DatabaseKind::Redis)
    );
    assert_eq!(DatabaseKind::from_kind("Memcached"), None);
}

#[test]
fn absurd_topologies_are_refused_before_anything_is_allocated() {
    let cluster = |shards, replicas| Topology::RedisCluster { shards, replicas };
    let cases = [
        (cluster(3, 2), None),
        (cluster(1_000, 1), None),
        (cluster(500, 2), None),
        (cluster(0, 2), None),
        (Topology::RedisSingle { replicas: 1_000 }, None),
        (Topology::ZooKeeper { replicas: 0 }, None),
        (cluster(50_000_000, 2), Some("spec.cluster.shards is 50000000")),
        (cluster(1_001, 0), Some("spec.cluster.shards is 1001")),
        (cluster(501, 2), Some("pods (shards x replicas) is 1002")),
        (
            cluster(3, i32::MAX),
            Some("pods (shards x replicas) is 6442450941"),
        ),
        (
            cluster(-1, 2),
            Some("spec.cluster.shards is -1; it must not be negative"),
        ),
        (cluster(3, -2), Some("spec.cluster.replicas is -2")),
        (
            Topology::RedisSingle { replicas: 1_001 },
            Some("spec.replicas is 1001"),
        ),
        (
            Topology::ZooKeeper { replicas: i32::MAX },
            Some("spec.replicas is 2147483647"),
        ),
        (Topology::ZooKeeper { replicas: -3 }, Some("spec.replicas is -3")),
    ];
    for (topology, want) in cases {
        let got = workloads(DatabaseKind::Redis, "rd", &topology);
        match want {
            None => {
                let w = got.unwrap_or_else(|e| panic!("{topology:?}: {e}"));
                assert!(w.len() as i64 <= MAX_WORKLOADS);
                assert!(w.iter().map(|w| i64::from(w.replicas)).sum::<i64>() <= MAX_PODS);
            }
            Some(text) => {
                let e = got.expect_err(text).to_string();
                assert!(e.starts_with(text), "{topology:?}: {e}");
            }
        }
    }
}
