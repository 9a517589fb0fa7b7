//! The UDP payload of an IPv4 packet read from a packet socket.
//!
//! Before a link has an address the kernel's IP layer may drop the server's replies
//! (reverse-path filtering finds no route back to the server), so the client reads them
//! from an `AF_PACKET` socket, as dhclient and systemd-networkd do, and takes the DHCP
//! payload out of the IPv4 and UDP headers here. Untrusted input: every length is checked.

/// The UDP payload of `packet` (an IPv4 datagram) if it is UDP to port `port`, whole and
/// not fragmented.
pub fn udp_payload(packet: &[u8], port: u16) -> Option<&[u8]> {
    let first = *packet.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let header_len = usize::from(first & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    let fragment = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]);
    // More-fragments flag or a fragment offset: DHCP replies are never fragmented.
    if header_len < 20 || fragment & 0x3fff != 0 || *packet.get(9)? != 17 {
        return None;
    }
    let ip = packet.get(..total_len)?;
    let udp = ip.get(header_len..)?;
    let dst = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let udp_len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    if dst != port || udp_len < 8 {
        return None;
    }
    udp.get(8..udp_len)
}
