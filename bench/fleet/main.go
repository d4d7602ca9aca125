// Command fleet simulates a fleet on one machine: one Mosquitto on
// loopback, n framesend senders, each on its own pty fake with its own
// topic, client ID and status topic, and producers publishing a thousand
// QoS 1 messages to each. Midway it kills a tenth of the senders with
// SIGKILL, checks that their status topics turn offline (their last will),
// restarts them, and checks that every device got every message at least
// once, in order, none split. It prints one table.
//
//	go run ./bench/fleet -framesend bin/framesend [-n 100] [-messages 1000]
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/framesend/framesend/device/ptyfake"
	"github.com/framesend/framesend/internal/mosquitto"
	"github.com/framesend/framesend/internal/peakrss"
)

func main() {
	framesend := flag.String("framesend", "bin/framesend", "the framesend binary")
	n := flag.Int("n", 100, "senders")
	messages := flag.Int("messages", 1000, "messages published to each sender")
	flag.Parse()
	res, err := simulate(options{framesend: *framesend, senders: *n, messages: *messages, log: os.Stderr})
	if res != nil {
		res.table(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

type options struct {
	framesend string
	senders   int
	messages  int
	log       io.Writer
}

// result is what the table shows.
type result struct {
	senders, messages, killed int
	delivered                 int // distinct messages at their devices
	complete                  int // devices with every message, in order, none split
	duplicates                int
	problems                  []string
	willsSeen                 int
	willWait                  time.Duration // longest wait for a last will
	elapsed                   time.Duration // first publish to the last message delivered
	rssKiB                    []int64       // peak RSS of each sender process (killed ones too)
	brokerKiB                 int64
}

func (r *result) table(w io.Writer) {
	slices.Sort(r.rssKiB)
	mib := func(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
	var med, worst int64
	if len(r.rssKiB) > 0 {
		med, worst = r.rssKiB[len(r.rssKiB)/2], r.rssKiB[len(r.rssKiB)-1]
	}
	total := r.senders * r.messages
	fmt.Fprintf(w, "| fleet on one machine: one Mosquitto, %d framesend senders on pty fakes | result | target |\n|---|---|---|\n", r.senders)
	fmt.Fprintf(w, "| messages published (QoS 1, 7 bytes, %d to each sender) | %d | |\n", r.messages, total)
	fmt.Fprintf(w, "| messages delivered, at least once | %d of %d | all |\n", r.delivered, total)
	fmt.Fprintf(w, "| devices with every message, in order, none split | %d of %d | all |\n", r.complete, r.senders)
	fmt.Fprintf(w, "| duplicates (sent again after a kill, before its acknowledgement) | %d | |\n", r.duplicates)
	fmt.Fprintf(w, "| senders killed with SIGKILL mid-stream and restarted | %d | |\n", r.killed)
	fmt.Fprintf(w, "| their status topics turned offline (last will) | %d of %d, within %v | all |\n", r.willsSeen, r.killed, r.willWait.Round(time.Millisecond))
	fmt.Fprintf(w, "| time, first publish to the last message at its device | %.1f s | |\n", r.elapsed.Seconds())
	fmt.Fprintf(w, "| peak RSS per sender process, median / largest (%d processes) | %s / %s | ≤ 12 MiB |\n", len(r.rssKiB), mib(med), mib(worst))
	fmt.Fprintf(w, "| peak RSS of the broker | %s | |\n", mib(r.brokerKiB))
	for _, p := range r.problems {
		fmt.Fprintf(w, "\nproblem: %s\n", p)
	}
}

// device is one sender's fake and what reached it.
type device struct {
	id     string
	fake   *ptyfake.PTY
	mu     sync.Mutex
	data   []byte
	parsed int // bytes of data looked at
	seen   map[int]bool
	done   chan struct{}
	proc   *exec.Cmd
	out    *bytes.Buffer
}

func (d *device) read() {
	defer close(d.done)
	buf := make([]byte, 4096)
	for {
		n, err := d.fake.Read(buf)
		d.mu.Lock()
		d.data = append(d.data, buf[:n]...)
		for ; d.parsed+7 <= len(d.data); d.parsed += 7 {
			if f := d.data[d.parsed : d.parsed+7]; bytes.Equal(f[4:], tail) {
				d.seen[int(binary.BigEndian.Uint32(f))] = true
			}
		}
		d.mu.Unlock()
		if err != nil {
			return
		}
	}
}

var tail = []byte{0xa5, 0x5a, 0xee}

func numbered(k int) []byte {
	m := append([]byte{0, 0, 0, 0}, tail...)
	binary.BigEndian.PutUint32(m, uint32(k))
	return m
}

func (d *device) distinct() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

// check returns the device's duplicates, or what is wrong with its stream:
// a split or corrupt frame, a message missing, or one out of order (the
// first time each message arrives, it must come after every smaller one).
func (d *device) check(messages int) (dups int, problem string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.data)%7 != 0 {
		return 0, fmt.Sprintf("%s: %d bytes, not whole frames", d.id, len(d.data))
	}
	first := map[int]bool{}
	next := 0
	for i := 0; i < len(d.data); i += 7 {
		if !bytes.Equal(d.data[i+4:i+7], tail) {
			return 0, fmt.Sprintf("%s: frame %d is % x: split or corrupt", d.id, i/7, d.data[i:i+7])
		}
		k := int(binary.BigEndian.Uint32(d.data[i:]))
		if first[k] {
			dups++
			continue
		}
		if k != next {
			return dups, fmt.Sprintf("%s: message %d arrived first where %d was due: out of order", d.id, k, next)
		}
		first[k] = true
		next++
	}
	if next != messages {
		return dups, fmt.Sprintf("%s: %d of %d messages", d.id, next, messages)
	}
	return dups, ""
}

// start starts the device's sender.
func (d *device) start(framesend, broker string) error {
	d.out = &bytes.Buffer{}
	d.proc = exec.Command(framesend, "send", "--port", d.fake.Path(), "--source", "mqtt://"+broker+"/fleet/"+d.id,
		"--client-id", d.id, "--summary", "json", "--log-level", "warn")
	d.proc.Stderr = d.out
	return d.proc.Start()
}

// statuses follows every sender's retained status topic.
type statuses struct {
	mu    sync.Mutex
	state map[string]string
	at    map[string]time.Time
}

func (s *statuses) get(id string) (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state[id], s.at[id]
}

func waitFor(limit time.Duration, what string, ok func() bool) error {
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if ok() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", limit, what)
		}
	}
}

func simulate(o options) (*result, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		return nil, errors.New("mosquitto is not installed (apt-get install mosquitto)")
	}
	res := &result{senders: o.senders, messages: o.messages}
	broker, err := startMosquitto(bin)
	if err != nil {
		return nil, err
	}
	defer broker.Stop()
	addr := broker.Addr()
	client := func(id string) (mqtt.Client, error) {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetMaxResumePubInFlight(1000))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("connect %s: %v", id, tok.Error())
		}
		return c, nil
	}

	st := &statuses{state: map[string]string{}, at: map[string]time.Time{}}
	watch, err := client("fleet-watch")
	if err != nil {
		return nil, err
	}
	defer watch.Disconnect(100)
	watch.Subscribe("framesend/+/status", 1, func(_ mqtt.Client, m mqtt.Message) {
		var s struct{ State string }
		json.Unmarshal(m.Payload(), &s)
		id := strings.TrimSuffix(strings.TrimPrefix(m.Topic(), "framesend/"), "/status")
		st.mu.Lock()
		st.state[id], st.at[id] = s.State, time.Now()
		st.mu.Unlock()
	}).Wait()

	devs := make([]*device, o.senders)
	defer func() {
		for _, d := range devs {
			if d == nil {
				continue
			}
			if d.proc != nil && d.proc.ProcessState == nil {
				d.proc.Process.Kill()
				d.proc.Wait()
			}
			d.fake.Close()
			<-d.done
		}
	}()
	for i := range devs {
		fake, err := ptyfake.New(ptyfake.Options{})
		if err != nil {
			return nil, err
		}
		d := &device{id: fmt.Sprintf("dev-%03d", i), fake: fake, seen: map[int]bool{}, done: make(chan struct{})}
		devs[i] = d
		go d.read()
		if err := d.start(o.framesend, addr); err != nil {
			return nil, err
		}
	}
	online := func(ds []*device) func() bool {
		return func() bool {
			for _, d := range ds {
				if s, _ := st.get(d.id); s != "online" {
					return false
				}
			}
			return true
		}
	}
	if err := waitFor(60*time.Second, "every sender online", online(devs)); err != nil {
		return res, err
	}
	fmt.Fprintf(o.log, "fleet: %d senders online\n", o.senders)

	// Producers: four clients, each serving every fourth device, message k
	// to every device before message k+1.
	start := time.Now()
	var published sync.WaitGroup
	var progress [4]int
	var pmu sync.Mutex
	perr := make(chan error, 4)
	for p := range 4 {
		pub, err := client(fmt.Sprintf("fleet-pub-%d", p))
		if err != nil {
			return res, err
		}
		defer pub.Disconnect(100)
		published.Go(func() {
			var toks []mqtt.Token
			for k := range o.messages {
				for i := p; i < len(devs); i += 4 {
					toks = append(toks, pub.Publish("fleet/"+devs[i].id, 1, false, numbered(k)))
				}
				if len(toks) >= 200 {
					for _, t := range toks {
						if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
							perr <- fmt.Errorf("publish: %v", t.Error())
							return
						}
					}
					toks = toks[:0]
				}
				pmu.Lock()
				progress[p] = k
				pmu.Unlock()
			}
			for _, t := range toks {
				t.WaitTimeout(30 * time.Second)
			}
		})
	}

	// Mid-stream: once about a third has been published, kill every tenth
	// sender.
	waitFor(5*time.Minute, "a third published", func() bool {
		pmu.Lock()
		defer pmu.Unlock()
		return slices.Min(progress[:]) >= o.messages/3
	})
	var killed []*device
	for i := 0; i < len(devs); i += max(1, len(devs)/10) {
		killed = append(killed, devs[i])
	}
	res.killed = len(killed)
	killedAt := time.Now()
	for _, d := range killed {
		res.rssKiB = append(res.rssKiB, peakrss.Of(d.proc.Process.Pid))
		d.proc.Process.Signal(syscall.SIGKILL)
		d.proc.Wait()
	}
	waitFor(30*time.Second, "the last wills", func() bool {
		n := 0
		for _, d := range killed {
			if s, at := st.get(d.id); s == "offline" && at.After(killedAt) {
				n++
			}
		}
		res.willsSeen = n
		return n == len(killed)
	})
	for _, d := range killed {
		if _, at := st.get(d.id); at.After(killedAt) {
			res.willWait = max(res.willWait, at.Sub(killedAt))
		}
	}
	fmt.Fprintf(o.log, "fleet: %d senders killed, %d last wills seen\n", len(killed), res.willsSeen)
	for _, d := range killed {
		if err := d.start(o.framesend, addr); err != nil {
			return res, err
		}
	}
	if err := waitFor(60*time.Second, "the restarted senders online", online(killed)); err != nil {
		res.problems = append(res.problems, err.Error())
	}
	published.Wait()
	select {
	case err := <-perr:
		return res, err
	default:
	}
	werr := waitFor(5*time.Minute, "every message at its device", func() bool {
		for _, d := range devs {
			if d.distinct() < o.messages {
				return false
			}
		}
		return true
	})
	res.elapsed = time.Since(start)
	if werr != nil {
		res.problems = append(res.problems, werr.Error())
	}
	fmt.Fprintf(o.log, "fleet: delivered in %.1f s\n", res.elapsed.Seconds())
	res.brokerKiB = peakrss.Of(broker.Pid())

	// Stop every sender and read its peak RSS from its summary.
	for _, d := range devs {
		d.proc.Process.Signal(syscall.SIGTERM)
	}
	for _, d := range devs {
		d.proc.Wait()
		out := strings.TrimSpace(d.out.String())
		var s struct {
			PeakRSS int64 `json:"peak_rss_kib"`
		}
		if err := json.Unmarshal([]byte(out[strings.LastIndex(out, "\n")+1:]), &s); err != nil {
			res.problems = append(res.problems, fmt.Sprintf("%s: no summary: %q", d.id, out))
		}
		res.rssKiB = append(res.rssKiB, s.PeakRSS)
	}
	time.Sleep(300 * time.Millisecond) // the last bytes through the ptys
	for _, d := range devs {
		dups, problem := d.check(o.messages)
		res.duplicates += dups
		res.delivered += d.distinct()
		if problem != "" {
			res.problems = append(res.problems, problem)
		} else {
			res.complete++
		}
	}
	if res.willsSeen != res.killed {
		res.problems = append(res.problems, fmt.Sprintf("%d of %d last wills seen", res.willsSeen, res.killed))
	}
	if len(res.problems) > 0 {
		return res, fmt.Errorf("%d problems", len(res.problems))
	}
	return res, nil
}

// startMosquitto starts the fleet's broker: every sender's whole backlog
// fits its session queue.
func startMosquitto(bin string) (*mosquitto.Broker, error) {
	return mosquitto.Start(bin, "max_queued_messages 10000\nmax_inflight_messages 100")
}
