package rbmguard

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Key is one encryption key: an id and 32 bytes.
type Key struct {
	ID  string
	Key []byte
}

// PayloadDecryptionError: a payload this codec cannot decrypt (unknown key id, altered, truncated).
type PayloadDecryptionError struct {
	KeyID   string
	Message string
}

func (e *PayloadDecryptionError) Error() string { return e.Message }

// ParseKeys reads `id:base64key` entries, comma- or newline-separated (`#` starts a comment line).
func ParseKeys(text string) ([]Key, error) {
	var keys []Key
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, entry := range strings.Split(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			n++
			id, material, found := strings.Cut(entry, ":")
			if !found {
				return nil, fmt.Errorf("encryption keys: entry %d is not id:base64key", n)
			}
			key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(material))
			if err != nil {
				return nil, fmt.Errorf("encryption keys: key %q is not base64", id)
			}
			keys = append(keys, Key{ID: strings.TrimSpace(id), Key: key})
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("encryption keys: none (expected id:base64key, comma-separated)")
	}
	return keys, nil
}

// EncryptionCodec is the converter.PayloadCodec every rbm-guard process speaks
// (docs/payload-encryption.md): AES-256-GCM over each payload's protobuf bytes, a fresh IV, the key
// id as authenticated data and in the metadata. All keys decrypt; CurrentKeyID encrypts.
type EncryptionCodec struct {
	CurrentKeyID string
	aeads        map[string]cipher.AEAD
	order        []string
}

var _ converter.PayloadCodec = (*EncryptionCodec)(nil)

// NewEncryptionCodec: currentKeyID "" means the last key.
func NewEncryptionCodec(keys []Key, currentKeyID string) (*EncryptionCodec, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("EncryptionCodec: no keys")
	}
	c := &EncryptionCodec{aeads: map[string]cipher.AEAD{}}
	for _, k := range keys {
		if !keyIDRe.MatchString(k.ID) {
			return nil, fmt.Errorf("EncryptionCodec: bad key id %q", k.ID)
		}
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("EncryptionCodec: key id %q appears twice", k.ID)
		}
		if len(k.Key) != C.PayloadEncryption.KeyBytes {
			return nil, fmt.Errorf("EncryptionCodec: key %q is %d bytes, not %d", k.ID, len(k.Key), C.PayloadEncryption.KeyBytes)
		}
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c.aeads[k.ID] = aead
		c.order = append(c.order, k.ID)
	}
	c.CurrentKeyID = currentKeyID
	if c.CurrentKeyID == "" {
		c.CurrentKeyID = keys[len(keys)-1].ID
	}
	if _, ok := c.aeads[c.CurrentKeyID]; !ok {
		return nil, fmt.Errorf("EncryptionCodec: current key %q is not loaded", c.CurrentKeyID)
	}
	return c, nil
}

// NewEncryptionCodecFromText parses RBM_GUARD_ENCRYPTION_KEYS-style text.
func NewEncryptionCodecFromText(text string) (*EncryptionCodec, error) {
	keys, err := ParseKeys(text)
	if err != nil {
		return nil, err
	}
	return NewEncryptionCodec(keys, "")
}

// Encode encrypts every payload with the current key.
func (c *EncryptionCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		iv := make([]byte, C.PayloadEncryption.IVBytes)
		if _, err := rand.Read(iv); err != nil {
			return nil, err
		}
		id := c.CurrentKeyID
		sealed := c.aeads[id].Seal(iv, iv, plain, []byte(id)) // iv || ciphertext || tag
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{"encoding": []byte(C.PayloadEncryption.Metadata.Encoding), C.PayloadEncryption.Metadata.KeyID: []byte(id)},
			Data:     sealed,
		}
	}
	return out, nil
}

// Decode decrypts our payloads; any other payload (written before encryption was on) passes unchanged.
func (c *EncryptionCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()["encoding"]) != C.PayloadEncryption.Metadata.Encoding {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[C.PayloadEncryption.Metadata.KeyID])
		if id == "" {
			return nil, &PayloadDecryptionError{Message: "encrypted payload has no " + C.PayloadEncryption.Metadata.KeyID + " in its metadata"}
		}
		aead, ok := c.aeads[id]
		if !ok {
			return nil, &PayloadDecryptionError{KeyID: id, Message: fmt.Sprintf("payload is encrypted with key id %q, which is not loaded (loaded: %s); add that key to the key list to read it", id, strings.Join(c.order, ", "))}
		}
		data := p.GetData()
		ivLen := C.PayloadEncryption.IVBytes
		if len(data) < ivLen+C.PayloadEncryption.TagBytes {
			return nil, &PayloadDecryptionError{KeyID: id, Message: fmt.Sprintf("encrypted payload (key %q) is truncated: %d bytes", id, len(data))}
		}
		plain, err := aead.Open(nil, data[:ivLen], data[ivLen:], []byte(id))
		if err != nil {
			return nil, &PayloadDecryptionError{KeyID: id, Message: fmt.Sprintf("encrypted payload (key %q) failed authentication: it was altered, or %q now names a different key", id, id)}
		}
		var decoded commonpb.Payload
		if err := proto.Unmarshal(plain, &decoded); err != nil {
			return nil, &PayloadDecryptionError{KeyID: id, Message: fmt.Sprintf("encrypted payload (key %q) holds no payload: %v", id, err)}
		}
		out[i] = &decoded
	}
	return out, nil
}

// DataConverter is Temporal's default converter wrapped by the codec: what every client needs.
func DataConverter(codec *EncryptionCodec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), codec)
}
