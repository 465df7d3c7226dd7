package serve

import (
	"context"
	"sync"
	"time"

	"github.com/puad-go/puad/detector"
)

// job is one image waiting for the networks.
type job struct {
	ctx      context.Context
	in       detector.Input
	enqueued time.Time
	done     chan outcome // buffered: the batcher never blocks on it
}

// outcome is what the batcher hands back for a job.
type outcome struct {
	res       detector.Result
	err       error
	batchSize int
	started   time.Time // when its forward pass began
	finished  time.Time
}

// batcher runs the forward passes of one category: it takes the first
// waiting job, waits at most maxWait for more (up to maxBatch) and scores
// them together.
type batcher struct {
	det      *detector.Detector
	jobs     chan *job
	maxBatch int
	maxWait  time.Duration
	met      *metrics
	quit     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
}

func newBatcher(d *detector.Detector, cfg Config, met *metrics) *batcher {
	b := &batcher{det: d, jobs: make(chan *job, cfg.QueueSize), maxBatch: cfg.MaxBatch, maxWait: cfg.MaxWait,
		met: met, quit: make(chan struct{}), stopped: make(chan struct{})}
	go b.loop()
	return b
}

// submit queues j; it reports false when the queue is full.
func (b *batcher) submit(j *job) bool {
	select {
	case b.jobs <- j:
		b.met.queueDepth.WithLabelValues(b.det.Category()).Set(float64(len(b.jobs)))
		return true
	default:
		return false
	}
}

// stop ends the loop once the jobs already taken are done; it is called
// after the HTTP server has finished its requests.
func (b *batcher) stop() {
	b.stopOnce.Do(func() { close(b.quit) })
	<-b.stopped
}

func (b *batcher) loop() {
	defer close(b.stopped)
	for {
		select {
		case j := <-b.jobs:
			b.run(b.collect(j))
		case <-b.quit:
			return
		}
	}
}

// collect gathers up to maxBatch jobs, the first one included, waiting at
// most maxWait for the others.
func (b *batcher) collect(first *job) []*job {
	batch := []*job{first}
	if b.maxBatch > 1 {
		timer := time.NewTimer(b.maxWait)
		defer timer.Stop()
	gather:
		for len(batch) < b.maxBatch {
			select {
			case j := <-b.jobs:
				batch = append(batch, j)
			case <-timer.C:
				break gather
			}
		}
	}
	b.met.queueDepth.WithLabelValues(b.det.Category()).Set(float64(len(b.jobs)))
	return batch
}

// run scores the jobs whose requests still wait and hands back the results.
func (b *batcher) run(batch []*job) {
	live := batch[:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- outcome{err: err}
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	ins := make([]detector.Input, len(live))
	for i, j := range live {
		ins[i] = j.in
	}
	started := time.Now()
	rs, err := b.det.PredictBatch(context.Background(), ins)
	finished := time.Now()
	b.met.batchSize.Observe(float64(len(live)))
	for i, j := range live {
		o := outcome{err: err, batchSize: len(live), started: started, finished: finished}
		if err == nil {
			o.res = rs[i]
			if !rs[i].Invalid { // a score that is not a number has no bucket
				b.met.score.WithLabelValues(b.det.Category()).Observe(rs[i].PUAD)
			}
		}
		j.done <- o
	}
}
