package stats

import (
	"encoding/json"
	"reflect"
)

// MarshalScored writes plain (a struct value, usually of a type declared
// without methods so that json.Marshal does not recurse) as JSON. When
// invalid, its "efficient_ad_score", "mahalanobis_distance" and
// "puad_score" are written from eff, maha and puad through JSONScore, so
// that scores that are not numbers come out as null, which JSON can hold;
// the other fields keep their order.
func MarshalScored(plain any, invalid bool, eff, maha, puad float64) ([]byte, error) {
	if !invalid {
		return json.Marshal(plain)
	}
	score := reflect.TypeOf((*float64)(nil))
	t := reflect.StructOf([]reflect.StructField{
		{Name: "Plain", Type: reflect.TypeOf(plain), Anonymous: true},
		{Name: "EfficientAD", Type: score, Tag: `json:"efficient_ad_score"`},
		{Name: "Mahalanobis", Type: score, Tag: `json:"mahalanobis_distance"`},
		{Name: "PUAD", Type: score, Tag: `json:"puad_score"`},
	})
	v := reflect.New(t).Elem()
	v.Field(0).Set(reflect.ValueOf(plain))
	v.Field(1).Set(reflect.ValueOf(JSONScore(eff)))
	v.Field(2).Set(reflect.ValueOf(JSONScore(maha)))
	v.Field(3).Set(reflect.ValueOf(JSONScore(puad)))
	return json.Marshal(v.Interface())
}
