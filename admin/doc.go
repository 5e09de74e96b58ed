// Package admin is what an operator does with etcdctl, done from code: the
// health of every member ([Health]), compaction that one of many replicas
// runs ([Compactor]), defragmentation one member at a time ([Defragment]),
// clearing the NOSPACE alarm ([Disarm]), and moving a prefix between
// clusters as JSON lines ([Export], [Import]).
//
//	r, err := admin.Health(ctx, cli)
//	if err != nil {
//		return err // the member list could not be read at all
//	}
//	fmt.Print(r) // a table, one member a line, and the verdict
//	if !r.Healthy {
//		log.Printf("etcd unhealthy: %v", r.Reasons)
//	}
//
// Every service replica can run the same compactor; each round one of them
// compacts:
//
//	cp, err := admin.NewCompactor(cli, admin.KeepFor(time.Hour))
//	if err != nil {
//		return err
//	}
//	go cp.Run(ctx) // until ctx ends or cli closes
//
// When the database outgrows its quota, etcd raises NOSPACE and writes fail
// with [etcdkit.ErrNoSpace] (reads and watches keep working); compact,
// [Defragment] and [Disarm] to recover.
package admin
