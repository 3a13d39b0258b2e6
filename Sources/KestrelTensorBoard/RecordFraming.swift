/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord framing.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// The CRC-32C of `bytes`.
    static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked form: rotate right by 15 and add a constant, so a checksum stored in
    /// data that is itself checksummed does not weaken the outer check.
    static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// TFRecord framing of one payload: u64 little-endian length, u32 masked CRC-32C of those 8
/// bytes, the payload, u32 masked CRC-32C of the payload.
func tfRecord(_ payload: [UInt8]) -> [UInt8] {
    var record: [UInt8] = []
    record.reserveCapacity(payload.count + 16)
    let length = UInt64(payload.count)
    for i in 0..<8 { record.append(UInt8((length >> (8 * UInt64(i))) & 0xFF)) }
    appendLittleEndian(CRC32C.masked(record[0..<8]), to: &record)
    record += payload
    appendLittleEndian(CRC32C.masked(payload), to: &record)
    return record
}

private func appendLittleEndian(_ v: UInt32, to bytes: inout [UInt8]) {
    for i in 0..<4 { bytes.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) }
}
