package admin

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// String renders the report as a table, one member a line, followed by the
// verdict and its reasons:
//
//	MEMBER  ENDPOINT                ROLE      LATENCY  INDEX  LAG  DB      IN USE  QUOTA  VERSION  PROBLEMS
//	m0      http://127.0.0.1:40001  leader    312µs    42     0    98 KiB  61 KiB  2%     3.7.3    -
//	...
//	cluster 5f3c…: healthy: quorum 3 of 3, leader m0
func (r *Report) String() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tENDPOINT\tROLE\tLATENCY\tINDEX\tLAG\tDB\tIN USE\tQUOTA\tVERSION\tPROBLEMS")
	for _, m := range r.Members {
		fmt.Fprintln(tw, m.row())
	}
	tw.Flush()
	b.WriteString(r.verdict())
	for _, why := range r.Reasons {
		b.WriteString("\n  - ")
		b.WriteString(why)
	}
	b.WriteByte('\n')
	return b.String()
}

func (m Member) row() string {
	cells := []string{m.label(), dash(m.Endpoint), m.role()}
	if m.Reachable {
		cells = append(cells, m.Latency.Round(time.Microsecond).String(), fmt.Sprint(m.RaftIndex),
			fmt.Sprint(m.Lag), bytesText(m.DBSize), bytesText(m.DBSizeInUse), m.quotaText(), m.Version)
	} else {
		cells = append(cells, "-", "-", "-", "-", "-", "-", "-")
	}
	probs := make([]string, len(m.Problems))
	for i, p := range m.Problems {
		probs[i] = p.String()
	}
	cells = append(cells, dash(strings.Join(probs, ", ")))
	return strings.Join(cells, "\t")
}

func (m Member) role() string {
	switch {
	case m.Learner:
		return "learner"
	case !m.Reachable:
		return "?"
	case m.Leader:
		return "leader"
	}
	return "follower"
}

func (m Member) quotaText() string {
	if m.Quota <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*m.QuotaUsed())
}

func (r *Report) verdict() string {
	state := "healthy"
	if !r.Healthy {
		state = "UNHEALTHY"
	}
	leader := "none"
	for _, m := range r.Members {
		if m.ID == r.LeaderID {
			leader = m.label()
		}
	}
	return fmt.Sprintf("cluster %x: %s: %d of %d voting members agree on leader %s", r.ClusterID, state, r.Agreeing, r.Voters, leader)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// bytesText writes n bytes in the largest binary unit that keeps it >= 1.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
