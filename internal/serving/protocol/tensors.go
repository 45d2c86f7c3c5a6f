package protocol

import (
	"strconv"

	"github.com/mloop/mloop/internal/serving"
)

// DecodeOIPTensors reads an Open Inference Protocol inference request for a
// model that declares no features (a process model, which judges the
// request itself), for the payload log: its inputs become a batch, either
// one 2-D input of shape [rows, cols] (or one input of shape [rows]: one
// column), or several inputs of shape [rows] or [rows, 1], taken as
// columns in their order. Values are read as DecodeOIP reads them
// (numeric features). Errors are those of DecodeOIP; when the body parses
// but its tensors do not fit, the OIPRequest is returned with the error,
// so that its id is known.
func DecodeOIPTensors(body []byte, maxRows int) (*OIPRequest, serving.Batch, error) {
	req, inputs, err := scanOIP(body)
	if err != nil {
		return nil, serving.Batch{}, err
	}
	if len(inputs) == 0 {
		return req, serving.Batch{}, invalid("the request has no inputs")
	}
	var features []serving.Feature
	if in := &inputs[0]; len(inputs) == 1 && in.manyDims == 0 && in.ndims == 2 {
		cols := in.shape[1]
		if cols == 0 || cols > len(body)/2+1 {
			return req, serving.Batch{}, invalid("input %s has shape %s, which its data cannot hold", quoteName(string(in.name)), in.shapeString())
		}
		features = make([]serving.Feature, cols)
		for i := range features {
			features[i] = serving.Feature{Name: "c" + strconv.Itoa(i), Type: serving.Numeric}
		}
	} else {
		features = make([]serving.Feature, len(inputs))
		for i := range inputs {
			features[i] = serving.Feature{Name: string(inputs[i].name), Type: serving.Numeric}
		}
		if len(inputs) == 1 {
			// A matrix of one column; its name need not match.
			features[0].Name = ""
		}
	}
	b, err := oipBatch(body, inputs, features, rowLimit(maxRows))
	if err != nil {
		return req, serving.Batch{}, err
	}
	return req, b, nil
}
