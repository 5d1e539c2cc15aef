// The contract's JSON values are FleetJSON's: everything that reads or writes a job or a result sees them
// through FleetCore.
@_exported import FleetJSON
