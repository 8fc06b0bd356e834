package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/nimbus-fn/nimbus/gateway/catalog"
	"github.com/nimbus-fn/nimbus/gateway/destinations"
	"github.com/nimbus-fn/nimbus/gateway/esmapi"
	"github.com/nimbus-fn/nimbus/gateway/sources"
	"github.com/nimbus-fn/nimbus/gateway/sources/kafka"
)

// kafkaProducer is the gateway's Kafka destination producer (nil without
// kafka_brokers).
func (s *Server) kafkaProducer() destinations.Publisher {
	if s.kafka == nil {
		return nil
	}
	return s.kafka
}

// EventSourcesPath lists the event-source mappings running on this gateway
// with their state, counters and lag (`nimbus event-sources`).
const EventSourcesPath = "/nimbus/v1/event-sources"

// specMappings lists the mappings the catalog's specs declare.
type specMappings struct {
	cat interface {
		Functions(ctx context.Context) ([]*catalog.Function, error)
	}
}

func (s specMappings) Mappings(ctx context.Context) ([]sources.Mapping, error) {
	fns, err := s.cat.Functions(ctx)
	if err != nil {
		return nil, err
	}
	return sources.FromFunctions(fns), nil
}

// startSources builds the event-source engine on the gateway's NATS, async
// queue and router. Its pollers run from Serve.
func (s *Server) startSources() {
	spec := specMappings{cat: s.deps.Catalog}
	lister := s.deps.Mappings
	var store *esmapi.Store
	if s.deps.MappingBackend != nil {
		store = esmapi.NewStore(s.deps.MappingBackend)
	}
	if lister == nil {
		lister = spec
		if store != nil {
			lister = &esmapi.Lister{Specs: spec.Mappings, Store: store}
		}
	}
	openers := s.deps.SourceOpeners
	if openers == nil {
		openers = DefaultOpeners()
	}
	s.sources = sources.NewManager(sources.Deps{
		Mappings: lister,
		Catalog:  s.deps.Catalog,
		Invoker:  s.invoker,
		Sender:   &destinations.Sender{Functions: s.queue, NATS: s.queue, Kafka: s.kafkaProducer()},
		KafkaSender: func(brokers string) (sources.Sender, func(), error) {
			if p := s.kafkaProducer(); p != nil {
				return &destinations.Sender{Functions: s.queue, NATS: s.queue, Kafka: p}, func() {}, nil
			}
			p, err := kafka.NewProducer(strings.Split(brokers, ","), s.logger)
			if err != nil {
				return nil, nil, err
			}
			return &destinations.Sender{Functions: s.queue, NATS: s.queue, Kafka: p}, p.Close, nil
		},
		Enqueuer: s.queue,
		Openers:  openers,
		NATS:     s.nats.Conn,
		Metrics:  sources.NewMetrics(s.metrics),
		Logger:   s.deps.Logger,
		Region:   s.cfg.Region, AccountID: s.cfg.AccountID, Member: s.deps.Member,
		FunctionTimeout: func(fn string) time.Duration {
			f, err := s.deps.Catalog.Function(context.Background(), fn)
			if err != nil || f.Latest() == nil {
				return 3 * time.Second
			}
			d, err := time.ParseDuration(f.Latest().Timeout)
			if err != nil {
				return 3 * time.Second
			}
			return d
		},
	}, s.deps.SourceOptions)
	if store != nil {
		opts := esmapi.Options{Store: store, Specs: spec.Mappings, Functions: s.deps.Catalog, Status: s.sources,
			Region: s.cfg.Region, AccountID: s.cfg.AccountID, Logger: s.deps.Logger}
		if v := s.verifier; v != nil {
			opts.Authorize = func(r *http.Request, body []byte) error {
				_, err := v.Verify(r, body)
				return err
			}
		}
		s.mappingAPI = esmapi.NewHandler(opts)
	}
}

// serveMappingAPI serves Lambda's event-source-mapping API once Start built
// it.
func (s *Server) serveMappingAPI(w http.ResponseWriter, r *http.Request) {
	if s.mappingAPI == nil {
		if !s.mayProceed(w, r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", "ServiceException")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"Type":"Service","Message":"this gateway has no store for event-source mappings"}`))
		return
	}
	s.mappingAPI.ServeHTTP(w, r)
}

// Sources is the event-source engine (after Start).
func (s *Server) Sources() *sources.Manager { return s.sources }

// serveEventSources answers GET /nimbus/v1/event-sources[?function=NAME].
func (s *Server) serveEventSources(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, `{"message":"method not allowed"}`, http.StatusMethodNotAllowed)
		return
	}
	list := []sources.Status{}
	if s.sources != nil {
		fn := r.URL.Query().Get("function")
		for _, st := range s.sources.Statuses() {
			if fn == "" || st.Function == fn {
				list = append(list, st)
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"EventSourceMappings": list})
}
