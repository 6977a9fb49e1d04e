package rbmguard

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

type wirePayload struct {
	Metadata map[string]string `json:"metadata"`
	Data     string            `json:"data"`
}

type vectors struct {
	Keys []struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	} `json:"keys"`
	Vectors []struct {
		Name      string      `json:"name"`
		KeyID     string      `json:"keyId"`
		Plain     wirePayload `json:"plain"`
		Encrypted wirePayload `json:"encrypted"`
	} `json:"vectors"`
	Rejects []struct {
		Name      string      `json:"name"`
		Error     string      `json:"error"`
		KeyID     string      `json:"keyId"`
		Encrypted wirePayload `json:"encrypted"`
	} `json:"rejects"`
}

func loadVectors(t *testing.T) (vectors, []Key) {
	t.Helper()
	raw, err := os.ReadFile("../../contract/codec-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var keys []Key
	for _, k := range v.Keys {
		b, _ := base64.StdEncoding.DecodeString(k.Key)
		keys = append(keys, Key{ID: k.ID, Key: b})
	}
	return v, keys
}

func fromWire(t *testing.T, w wirePayload) *commonpb.Payload {
	p := &commonpb.Payload{Metadata: map[string][]byte{}}
	for k, v := range w.Metadata {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatal(err)
		}
		p.Metadata[k] = b
	}
	p.Data, _ = base64.StdEncoding.DecodeString(w.Data)
	return p
}

func samePayload(a, b *commonpb.Payload) bool {
	if !bytes.Equal(a.GetData(), b.GetData()) || len(a.GetMetadata()) != len(b.GetMetadata()) {
		return false
	}
	for k, v := range a.GetMetadata() {
		if !bytes.Equal(v, b.GetMetadata()[k]) {
			return false
		}
	}
	return true
}

func TestVectorsDecrypt(t *testing.T) {
	v, keys := loadVectors(t)
	codec, err := NewEncryptionCodec(keys, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) < 2 {
		t.Fatal("too few vectors")
	}
	for _, vec := range v.Vectors {
		t.Run(vec.Name, func(t *testing.T) {
			out, err := codec.Decode([]*commonpb.Payload{fromWire(t, vec.Encrypted)})
			if err != nil {
				t.Fatal(err)
			}
			if !samePayload(out[0], fromWire(t, vec.Plain)) {
				t.Fatalf("decrypted %v, want %v", out[0], vec.Plain)
			}
		})
	}
}

func TestVectorsRoundTrip(t *testing.T) {
	v, keys := loadVectors(t)
	for _, vec := range v.Vectors {
		t.Run(vec.Name, func(t *testing.T) {
			codec, err := NewEncryptionCodec(keys, vec.KeyID)
			if err != nil {
				t.Fatal(err)
			}
			plain := fromWire(t, vec.Plain)
			enc, err := codec.Encode([]*commonpb.Payload{plain, plain})
			if err != nil {
				t.Fatal(err)
			}
			if string(enc[0].Metadata["encryption-key-id"]) != vec.KeyID || string(enc[0].Metadata["encoding"]) != "binary/encrypted" {
				t.Fatalf("metadata %v", enc[0].Metadata)
			}
			if bytes.Equal(enc[0].Data[:12], enc[1].Data[:12]) {
				t.Fatal("the IV was reused")
			}
			back, err := codec.Decode(enc[:1])
			if err != nil || !samePayload(back[0], plain) {
				t.Fatalf("round trip: %v %v", back, err)
			}
		})
	}
}

func TestVectorsRejects(t *testing.T) {
	v, keys := loadVectors(t)
	codec, _ := NewEncryptionCodec(keys, "")
	want := map[string]string{"unknown-key": "not loaded", "authentication": "failed authentication", "truncated": "truncated"}
	for _, r := range v.Rejects {
		t.Run(r.Name, func(t *testing.T) {
			_, err := codec.Decode([]*commonpb.Payload{fromWire(t, r.Encrypted)})
			var de *PayloadDecryptionError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a PayloadDecryptionError", err)
			}
			if de.KeyID != r.KeyID || !strings.Contains(de.Error(), `"`+r.KeyID+`"`) || !strings.Contains(de.Error(), want[r.Error]) {
				t.Fatalf("error %q (key %q) for %s", de.Error(), de.KeyID, r.Error)
			}
		})
	}
}
