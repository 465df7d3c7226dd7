//go:build !unix

package datasets

// openNoBlock is only needed where named pipes block open(2).
const openNoBlock = 0
