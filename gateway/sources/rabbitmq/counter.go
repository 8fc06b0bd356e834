package rabbitmq

import "container/list"

// maxCounted bounds the message ids whose deliveries are counted.
const maxCounted = 1 << 16

// deliveryCounter counts how often this source has seen each message id,
// for queues whose broker keeps no count (classic queues). It remembers
// the most recently seen max ids; acked messages are forgotten.
//
// Not safe for concurrent use (Source.mu guards it).
type deliveryCounter struct {
	max   int
	ids   map[string]*list.Element
	order *list.List // of *counted, most recently seen first
}

type counted struct {
	id string
	n  int
}

func newDeliveryCounter(max int) *deliveryCounter {
	return &deliveryCounter{max: max, ids: map[string]*list.Element{}, order: list.New()}
}

// observe records one delivery of id and returns its delivery number: 1
// the first time, or 2 when the broker flags it redelivered (an earlier
// delivery went to another consumer); +1 for each redelivery seen after
// that. A delivery of a known id that is not flagged redelivered is a new
// message reusing the id, and counts 1 again.
func (c *deliveryCounter) observe(id string, redelivered bool) int {
	if e, ok := c.ids[id]; ok {
		m := e.Value.(*counted)
		if redelivered {
			m.n++
		} else {
			m.n = 1
		}
		c.order.MoveToFront(e)
		return m.n
	}
	n := 1
	if redelivered {
		n = 2
	}
	c.ids[id] = c.order.PushFront(&counted{id: id, n: n})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.ids, last.Value.(*counted).id)
	}
	return n
}

// forget drops id (its message was acked).
func (c *deliveryCounter) forget(id string) {
	if e, ok := c.ids[id]; ok {
		c.order.Remove(e)
		delete(c.ids, id)
	}
}
