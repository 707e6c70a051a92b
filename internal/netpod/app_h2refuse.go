package netpod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// H2RefuseServer speaks HTTP/2 without TLS (prior knowledge) and refuses
// streams: of the streams it gets, counted over all its connections from
// 1, it answers those whose number is a multiple of RefuseEvery (3) with
// 200 and a Report (Stream set to the number) and resets the others with
// RST_STREAM(REFUSED_STREAM). Sequential calls each retried twice on
// refused-stream are each answered on their third stream.
const H2RefuseServer = "h2-refuse-server"

// RefuseEvery is the period of the streams H2RefuseServer answers.
const RefuseEvery = 3

func serveH2Refuse(ctx context.Context, cfg AppConfig) error {
	var streams atomic.Int64
	return serveConns(ctx, cfg.Port, "h2c (refusing streams)", func(conn net.Conn) {
		defer func() { _ = conn.Close() }()
		_ = refuseStreams(conn, cfg.Name, &streams)
	})
}

// refuseStreams serves one connection until it ends.
func refuseStreams(conn net.Conn, name string, streams *atomic.Int64) error {
	rd := bufio.NewReader(conn)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(rd, preface); err != nil {
		return err
	}
	if string(preface) != http2.ClientPreface {
		return errors.New("no HTTP/2 client preface")
	}
	fr := http2.NewFramer(conn, rd)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	c := &h2Refuser{fr: fr, name: name, streams: streams}
	c.enc = hpack.NewEncoder(&c.block)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		if err := c.answerFrame(f); err != nil {
			return err
		}
	}
}

// answerFrame acknowledges SETTINGS and PING, ends on GOAWAY, and answers
// or refuses each new stream; the rest (WINDOW_UPDATE, DATA, ...) it
// ignores.
func (c *h2Refuser) answerFrame(f http2.Frame) error {
	fr := c.fr
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() {
			return fr.WriteSettingsAck()
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			return fr.WritePing(true, f.Data)
		}
	case *http2.GoAwayFrame:
		return io.EOF
	case *http2.MetaHeadersFrame:
		n := c.streams.Add(1)
		if n%RefuseEvery != 0 {
			return fr.WriteRSTStream(f.StreamID, http2.ErrCodeRefusedStream)
		}
		return c.answer(f, int(n))
	}
	return nil
}

// h2Refuser is one connection of the H2RefuseServer; its header encoder
// keeps the connection's HPACK state.
type h2Refuser struct {
	fr      *http2.Framer
	enc     *hpack.Encoder
	block   bytes.Buffer
	name    string
	streams *atomic.Int64
}

// answer answers stream n with 200 and a Report.
func (c *h2Refuser) answer(f *http2.MetaHeadersFrame, n int) error {
	name := c.name
	rep := Report{Pod: name, Method: f.PseudoValue("method"), Host: f.PseudoValue("authority"), Path: f.PseudoValue("path"),
		Headers: map[string][]string{}, Proto: "HTTP/2.0", Stream: n}
	for _, h := range f.RegularFields() {
		rep.Headers[h.Name] = append(rep.Headers[h.Name], h.Value)
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	c.block.Reset()
	for _, h := range []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/json"}, {Name: strings.ToLower(AppPodHeader), Value: name}} {
		if err := c.enc.WriteField(h); err != nil {
			return err
		}
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: c.block.Bytes(), EndHeaders: true}); err != nil {
		return err
	}
	return c.fr.WriteData(f.StreamID, true, body)
}
