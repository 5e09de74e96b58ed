package admin

import "fmt"

// DefragOption changes what [Defragment] does.
type DefragOption interface{ applyDefrag(*defragOptions) }

type defragOptions struct {
	ratio    float64 // free share of the file needed
	minFree  int64   // free bytes needed
	always   bool
	dryRun   bool
	onMember func(Defragged)
}

type defragFunc func(*defragOptions)

func (f defragFunc) applyDefrag(o *defragOptions) { f(o) }

// skip says why m is left alone, or "" to defragment it.
func (o defragOptions) skip(m Member) string {
	if o.always {
		return ""
	}
	free := m.DBSize - m.DBSizeInUse
	if m.DBSize <= 0 || float64(free) <= o.ratio*float64(m.DBSize) || free <= o.minFree {
		return fmt.Sprintf("%s free of %s: the rule wants over %.0f%% and over %s",
			bytesText(free), bytesText(m.DBSize), 100*o.ratio, bytesText(o.minFree))
	}
	return ""
}

// FreeOver sets [Defragment]'s rule: a member is defragmented when the free
// space of its database file is over ratio of the file (0 to 1) and over
// bytes. The default is FreeOver(0.5, 16<<20). A ratio outside [0, 1] or
// negative bytes make Defragment fail with etcdkit.ErrInvalidArgument.
func FreeOver(ratio float64, bytes int64) DefragOption {
	return defragFunc(func(o *defragOptions) { o.ratio, o.minFree, o.always = ratio, bytes, false })
}

// DefragAlways makes [Defragment] defragment every member, whatever its
// free space.
func DefragAlways() DefragOption {
	return defragFunc(func(o *defragOptions) { o.always = true })
}

// DryRun makes [Defragment] check health and report which members it would
// defragment, without defragmenting any.
func DryRun() DefragOption {
	return defragFunc(func(o *defragOptions) { o.dryRun = true })
}

// OnMember makes [Defragment] call fn after each member, defragmented or
// skipped, from the goroutine that called Defragment.
func OnMember(fn func(Defragged)) DefragOption {
	return defragFunc(func(o *defragOptions) { o.onMember = fn })
}
