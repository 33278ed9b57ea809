package relay

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"chatgate/core/desk"
	"chatgate/core/model"
)

// BenchmarkRelayDelivery measures the relay's own cost per message: the
// visitor's post with its outbox row (one fsync'd group commit), the
// delivery loop reading it and recording it delivered (another), to a
// connector that takes everything at once. 100 conversations post
// concurrently; the figure is messages/s relayed.
//
//	go test -run '^$' -bench BenchmarkRelayDelivery -benchtime 5000x ./core/relay
func BenchmarkRelayDelivery(b *testing.B) {
	e := newEnv(b, "")
	const convs = 100
	var cs []model.Conversation
	for i := range convs {
		v := e.visitor(fmt.Sprintf("v%d", i))
		cs = append(cs, e.start(v, "sales"))
	}
	up := e.conns["up"]
	base := len(up.deliveries())
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	per := b.N/convs + 1
	for _, c := range cs {
		wg.Go(func() {
			for j := range per {
				_, _, err := e.d.Post(b.Context(), desk.PostRequest{Conv: c.ID,
					Author: model.Author{Kind: model.AuthorVisitor, ID: string(c.Visitor)}, Draft: desk.Draft{Text: fmt.Sprint(j)}})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := base + per*convs
	for len(up.deliveries()) < want {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(per*convs)/time.Since(start).Seconds(), "msgs/s")
}
