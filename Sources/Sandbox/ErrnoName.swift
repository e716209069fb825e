import CSandbox

func csbErrnoName(_ value: Int32) -> String? {
    guard let name = csb_errno_name(value) else { return nil }
    return String(cString: name)
}
