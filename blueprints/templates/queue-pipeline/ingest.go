package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const maxBody = 256 << 10

// Ingest is the function URL producers POST orders to. It checks an order
// and publishes it to the stream (the order id is the JetStream message id,
// so a producer's retry within the stream's duplicate window is stored
// once) and answers 202 with the stream sequence. GET answers how many
// orders wait in the stream.
type Ingest struct {
	JS      jetstream.JetStream
	Stream  string
	Subject string
}

// EnsureStream creates the work-queue stream when it does not exist yet.
// In production you may prefer to create it with your other NATS
// resources and give the function publish rights only.
func (in *Ingest) EnsureStream(ctx context.Context) error {
	_, err := in.JS.Stream(ctx, in.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = in.JS.CreateStream(ctx, jetstream.StreamConfig{
			Name:      in.Stream,
			Subjects:  []string{in.Subject},
			Retention: jetstream.WorkQueuePolicy,
			Storage:   jetstream.FileStorage,
		})
	}
	return err
}

func (in *Ingest) Handle(ctx context.Context, req events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	if err := in.EnsureStream(ctx); err != nil {
		log.Printf("stream %s: %v", in.Stream, err)
		return answer(http.StatusServiceUnavailable, map[string]string{"error": "the queue is unavailable; try again"}), nil
	}
	switch req.RequestContext.HTTP.Method {
	case http.MethodGet, "":
		s, err := in.JS.Stream(ctx, in.Stream)
		if err != nil {
			return answer(http.StatusServiceUnavailable, map[string]string{"error": "the queue is unavailable; try again"}), nil
		}
		info, err := s.Info(ctx)
		if err != nil {
			return answer(http.StatusServiceUnavailable, map[string]string{"error": "the queue is unavailable; try again"}), nil
		}
		return answer(http.StatusOK, map[string]any{"stream": in.Stream, "waiting": info.State.Msgs}), nil
	case http.MethodPost:
	default:
		r := answer(http.StatusMethodNotAllowed, map[string]string{"error": "POST an order, or GET the queue's state"})
		r.Headers["Allow"] = "GET, POST"
		return r, nil
	}
	body := req.Body
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return answer(http.StatusBadRequest, map[string]string{"error": "the body is not valid base64"}), nil
		}
		body = string(b)
	}
	if len(body) > maxBody {
		return answer(http.StatusRequestEntityTooLarge, map[string]string{"error": "an order is at most 256 KiB"}), nil
	}
	var o Order
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return answer(http.StatusBadRequest, map[string]string{"error": "not an order: " + err.Error()}), nil
	}
	if err := o.Check(); err != nil {
		return answer(http.StatusBadRequest, map[string]string{"error": err.Error()}), nil
	}
	data, err := json.Marshal(o)
	if err != nil {
		return events.LambdaFunctionURLResponse{}, err
	}
	ack, err := in.JS.PublishMsg(ctx, &nats.Msg{Subject: in.Subject, Data: data, Header: nats.Header{nats.MsgIdHdr: []string{o.ID}}})
	if err != nil {
		log.Printf("publishing order %s: %v", o.ID, err)
		return answer(http.StatusServiceUnavailable, map[string]string{"error": "the queue is unavailable; try again"}), nil
	}
	return answer(http.StatusAccepted, map[string]any{"id": o.ID, "stream": ack.Stream, "sequence": ack.Sequence, "duplicate": ack.Duplicate}), nil
}

func answer(status int, v any) events.LambdaFunctionURLResponse {
	b, _ := json.Marshal(v)
	return events.LambdaFunctionURLResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}
